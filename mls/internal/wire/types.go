package wire

// Enumerations and registry values of RFC 9420 §§5–13 and §17 (IANA).

// ProtocolVersion is RFC 9420 §6 ProtocolVersion.
type ProtocolVersion uint16

// Protocol versions (RFC 9420 §6, §17.1).
const (
	ProtocolVersionReserved ProtocolVersion = 0
	MLS10                   ProtocolVersion = 1
)

// CipherSuite is RFC 9420 §5.1 CipherSuite, a uint16 registry value
// (§17.1). Capabilities may list any value (including GREASE, §13.5); a
// single cipher_suite field must not be the reserved value 0.
type CipherSuite uint16

// Cipher suites registered by RFC 9420 §17.1, spelled as the RFC spells them.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            CipherSuite = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     CipherSuite = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
)

// WireFormat is RFC 9420 §6 WireFormat (uint16, registry §17.2).
type WireFormat uint16

// Wire formats (RFC 9420 §17.2).
const (
	WireFormatReserved       WireFormat = 0x0000
	WireFormatPublicMessage  WireFormat = 0x0001 // mls_public_message
	WireFormatPrivateMessage WireFormat = 0x0002 // mls_private_message
	WireFormatWelcome        WireFormat = 0x0003 // mls_welcome
	WireFormatGroupInfo      WireFormat = 0x0004 // mls_group_info
	WireFormatKeyPackage     WireFormat = 0x0005 // mls_key_package
)

// isFraming reports whether w is one of the two wire formats that carry
// FramedContent (RFC 9420 §6: AuthenticatedContent.wire_format).
func (w WireFormat) isFraming() bool {
	return w == WireFormatPublicMessage || w == WireFormatPrivateMessage
}

// ContentType is RFC 9420 §6 ContentType.
type ContentType uint8

// Content types (RFC 9420 §6).
const (
	ContentTypeReserved    ContentType = 0
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (c ContentType) valid() bool { return c >= ContentTypeApplication && c <= ContentTypeCommit }

// SenderType is RFC 9420 §6 SenderType.
type SenderType uint8

// Sender types (RFC 9420 §6).
const (
	SenderTypeReserved          SenderType = 0
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// LeafNodeSource is RFC 9420 §7.2 LeafNodeSource.
type LeafNodeSource uint8

// Leaf node sources (RFC 9420 §7.2).
const (
	LeafNodeSourceReserved   LeafNodeSource = 0
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// CredentialType is RFC 9420 §5.3 CredentialType (uint16, registry §17.5).
type CredentialType uint16

// Credential types (RFC 9420 §17.5).
const (
	CredentialTypeReserved CredentialType = 0x0000
	CredentialTypeBasic    CredentialType = 0x0001
	CredentialTypeX509     CredentialType = 0x0002
)

// ExtensionType is RFC 9420 §7.2 ExtensionType (uint16, registry §17.3).
type ExtensionType uint16

// Extension types (RFC 9420 §17.3).
const (
	ExtensionTypeReserved             ExtensionType = 0x0000
	ExtensionTypeApplicationID        ExtensionType = 0x0001 // application_id
	ExtensionTypeRatchetTree          ExtensionType = 0x0002 // ratchet_tree
	ExtensionTypeRequiredCapabilities ExtensionType = 0x0003 // required_capabilities
	ExtensionTypeExternalPub          ExtensionType = 0x0004 // external_pub
	ExtensionTypeExternalSenders      ExtensionType = 0x0005 // external_senders
)

// ProposalType is RFC 9420 §12.1 ProposalType (uint16, registry §17.4).
type ProposalType uint16

// Proposal types (RFC 9420 §17.4).
const (
	ProposalTypeReserved               ProposalType = 0x0000
	ProposalTypeAdd                    ProposalType = 0x0001
	ProposalTypeUpdate                 ProposalType = 0x0002
	ProposalTypeRemove                 ProposalType = 0x0003
	ProposalTypePSK                    ProposalType = 0x0004
	ProposalTypeReInit                 ProposalType = 0x0005
	ProposalTypeExternalInit           ProposalType = 0x0006
	ProposalTypeGroupContextExtensions ProposalType = 0x0007
)

// PSKType is RFC 9420 §8.4 PSKType.
type PSKType uint8

// PSK types (RFC 9420 §8.4).
const (
	PSKTypeReserved   PSKType = 0
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage is RFC 9420 §8.4 ResumptionPSKUsage.
type ResumptionPSKUsage uint8

// Resumption PSK usages (RFC 9420 §8.4).
const (
	ResumptionPSKUsageReserved    ResumptionPSKUsage = 0
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// NodeType is RFC 9420 §7.8 NodeType.
type NodeType uint8

// Node types (RFC 9420 §7.8).
const (
	NodeTypeReserved NodeType = 0
	NodeTypeLeaf     NodeType = 1
	NodeTypeParent   NodeType = 2
)

// ProposalOrRefType is RFC 9420 §12.4 ProposalOrRefType.
type ProposalOrRefType uint8

// ProposalOrRef types (RFC 9420 §12.4).
const (
	ProposalOrRefTypeReserved  ProposalOrRefType = 0
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)
