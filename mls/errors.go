package mls

import "errors"

// Errors a caller may branch on. Every other failure is wrapped with context.
var (
	// ErrWrongEpoch is returned for a handshake message of another epoch
	// than the group's current one: a stale, replayed or early message
	// (RFC 9420 §6.3.2, §12.4: handshake messages are processed in order
	// within one epoch).
	ErrWrongEpoch = errors.New("mls: message is not for the current epoch")
	// ErrWrongGroup is returned for a message whose group_id is not the
	// group's.
	ErrWrongGroup = errors.New("mls: message is for another group")
	// ErrMembershipTag is returned when a member's PublicMessage has an
	// invalid membership tag (RFC 9420 §6.2).
	ErrMembershipTag = errors.New("mls: invalid membership tag")
	// ErrConfirmationTag is returned when a commit's or GroupInfo's
	// confirmation tag does not verify (RFC 9420 §6.1, §12.4.3.1).
	ErrConfirmationTag = errors.New("mls: invalid confirmation tag")
	// ErrNotForUs is returned by Join when the Welcome carries no
	// GroupSecrets for the KeyPackage (RFC 9420 §12.4.3.1).
	ErrNotForUs = errors.New("mls: welcome is not addressed to this key package")
	// ErrRemoved is returned after a commit that removes this member: the
	// group can no longer be used (RFC 9420 §12.4.2).
	ErrRemoved = errors.New("mls: this member was removed from the group")
)
