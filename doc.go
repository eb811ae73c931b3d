// Package obol embeds an obol node in a Go program: a client that dials
// through onion circuits, clear-net hosts through exits and .obol hidden
// services through rendezvous points; hidden services offered as a
// net.Listener; relays; and the Cashu wallet that pays for circuits.
//
//	c, err := obol.NewClient(obol.ClientConfig{DataDir: dir, Bootstrap: peers})
//	go c.Run(ctx)
//	conn, err := c.Dial(ctx, "tcp", "example.com:80")
//
// Constructors check their configuration and do no I/O. Run joins the
// network, keeps the view of relays fresh, prebuilds circuits and settles
// payments until its context ends, and returns once every goroutine it
// started has ended. Dial and Listen wait until Run has joined.
//
// Dial's errors carry a kind that tells the caller what to do: KindOf(err)
// is KindRetry, KindOtherPath, KindRefused, KindNotFound, KindTimeout,
// KindClosed and so on.
package obol
