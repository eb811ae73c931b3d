package pay

// SettleBatch exposes Channels.settleBatch to the package's external tests.
var SettleBatch = (*Channels).settleBatch
