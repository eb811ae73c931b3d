package link

import "time"

// peerstoreTTL is how long addresses of a dialled relay stay in the
// peerstore: as long as a descriptor may live.
const peerstoreTTL = 24 * time.Hour
