package identity_test

import (
	"fmt"

	"github.com/parley-messenger/parley/identity"
)

// Example_safetyNumber: Alice and Bob each compute the safety number from
// their own and the other's public identity; the digits and QR payload are
// the same on both sides.
func Example_safetyNumber() {
	alice, err := identity.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := identity.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Public identities travel as text, e.g. in an invitation.
	text, err := bob.Public().MarshalText()
	if err != nil {
		fmt.Println(err)
		return
	}
	var bobSeenByAlice identity.PublicIdentity
	if err := bobSeenByAlice.UnmarshalText(text); err != nil {
		fmt.Println(err)
		return
	}
	onAlicesPhone := identity.ComputeSafetyNumber(alice.Public(), bobSeenByAlice)
	onBobsPhone := identity.ComputeSafetyNumber(bob.Public(), alice.Public())
	fmt.Println("digits match:", onAlicesPhone.String() == onBobsPhone.String())
	fmt.Println("QR scan matches:", onBobsPhone.MatchesQR(onAlicesPhone.QRPayload()))
	fmt.Println("groups:", len(onAlicesPhone.String())/6+1)
	// Output:
	// digits match: true
	// QR scan matches: true
	// groups: 12
}
