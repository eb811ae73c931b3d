// Package hidden is obol's hidden services (specs/07-hidden.md): a
// service, named by a .obol address, keeps circuits to a few introduction
// points and publishes a blinded, encrypted descriptor for them in the
// DHT; a client fetches that descriptor through a circuit, opens a
// rendezvous point, introduces itself through an intro point, and meets
// the service there. A Noise NK handshake, carried in INTRODUCE and
// RENDEZVOUS, gives the two ends a layer of their own; streams are
// multiplexed inside it.
//
// Listen is the service side (a net.Listener; Forward maps its virtual
// ports to local targets); Connector.Dial the client side (IsAddress tells
// a client manager which hosts to send there, Route does it for a SOCKS
// dialer). Neither ever contacts a DHT node or an intro or rendezvous
// relay directly: every exchange goes through a three-hop circuit whose
// first hops are a small guard set and a layer of vanguards (guards.go).
// A relay serves descriptor fetches and stores for circuits when its
// router is given a DHTDirectory.
//
// Circuits are paid through Config.Pay; a service's rendezvous circuits
// through Config.Standby if set (pay.Standby), from channels funded in
// advance to its guards and vanguards, so that no mint request answers an
// introduction (specs/05-payment.md §7.13).
//
// A service may admit listed clients only (ServiceConfig.AuthorizedClients,
// Config.ClientKeys) and ask for a proof of work under load
// (ServiceConfig.PoW); it queues introductions with bounded, counted
// outcomes (Status().Intro).
//
// A minimal service and client:
//
//	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: cfg, Key: key})
//	go http.Serve(l, handler)                // l.Address() is "<56 chars>.obol"
//
//	c, err := hidden.NewConnector(cfg)
//	hc := &http.Client{Transport: &http.Transport{DialContext: c.Dial}}
//	resp, err := hc.Get("http://" + l.Address() + "/")
package hidden
