package repo

import "errors"

// Errors returned (wrapped, with the object key) by this package. Test them
// with errors.Is.
var (
	// ErrCorrupt means an object failed a check: bad magic, checksum
	// mismatch, truncation, trailing bytes, a malformed payload, or a key
	// that does not match the object's contents.
	ErrCorrupt = errors.New("corrupt object")
	// ErrUnsupportedVersion means an object or the repository was written by
	// a newer rewind whose format this build cannot read.
	ErrUnsupportedVersion = errors.New("unsupported format version")
	// ErrWrongKey means the identity given cannot decrypt the object.
	ErrWrongKey = errors.New("wrong identity")
	// ErrNeedIdentity means an encrypted object was read without an identity.
	ErrNeedIdentity = errors.New("identity required")
	// ErrNoRepository means the store holds no rewind config object.
	ErrNoRepository = errors.New("no rewind repository")
	// ErrAlreadyInitialized means Init found an existing config object.
	ErrAlreadyInitialized = errors.New("repository already initialized")
	// ErrLocked means a conflicting lock is held; the error is a *LockedError.
	ErrLocked = errors.New("repository is locked")
	// ErrLockLost means a held lock's object disappeared or went stale.
	ErrLockLost = errors.New("repository lock lost")
	// ErrInvalid means the caller passed an argument the format cannot store.
	ErrInvalid = errors.New("invalid argument")
)
