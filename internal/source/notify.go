package source

// A notifier reports what happens in the watched folder. On Linux it is
// inotify itself, which also says when a writer closes a file
// (IN_CLOSE_WRITE), so a file is taken once its writer is done rather
// than once it has been quiet for a while; elsewhere it is fsnotify,
// without that.
type notifier interface {
	Events() <-chan notifyEvent
	Close() error
}

// notifyOp is what happened.
type notifyOp int

const (
	opChanged  notifyOp = iota // created, attributes changed, or (fsnotify) anything
	opWriting                  // written to by a writer that holds it open (opClosed follows)
	opClosed                   // a writer closed it
	opMovedIn                  // renamed into the folder: complete
	opRemoved                  // removed or renamed away
	opDirGone                  // the folder itself was removed or renamed
	opOverflow                 // events were lost: list the folder again
)

type notifyEvent struct {
	Name string // base name; "" for folder events
	Op   notifyOp
}
