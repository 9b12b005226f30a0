#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, kept as 16 bytes: an IPv4 address is stored in
/// its IPv4-mapped form (`::ffff:a.b.c.d`), so that a mapped address is
/// judged exactly as the IPv4 address it reaches.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Parses dotted IPv4 or textual IPv6 (without brackets or zone); nil otherwise.
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: withUnsafeBytes(of: v4.s_addr) { Array($0) })
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(bytes: withUnsafeBytes(of: v6) { Array($0) })
    }

    /// The address in a socket address (what libcurl is about to connect to), or nil for other families.
    public init?(socketAddress: UnsafePointer<sockaddr>) {
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            let address = UnsafeRawPointer(socketAddress).load(as: sockaddr_in.self)
            self.init(ipv4: withUnsafeBytes(of: address.sin_addr.s_addr) { Array($0) })
        case AF_INET6:
            let address = UnsafeRawPointer(socketAddress).load(as: sockaddr_in6.self)
            self.init(bytes: withUnsafeBytes(of: address.sin6_addr) { Array($0) })
        default:
            return nil
        }
    }

    private init(ipv4: [UInt8]) {
        self.init(bytes: [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + ipv4)
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// True for an IPv4 address (stored mapped).
    public var isIPv4: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block of addresses in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or one
/// address). IPv4 blocks also cover the IPv4-mapped IPv6 forms of their addresses.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    public let base: IPAddress
    /// Leading bits that must match, counted over the 16-byte form.
    public let prefixLength: Int
    public let description: String

    /// Parses `ADDRESS/BITS` or a single address.
    /// - Throws: `OptionError` naming the text and the expected form.
    public init(_ text: some StringProtocol) throws(OptionError) {
        let text = String(text)
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPAddress(parts[0]) else {
            throw OptionError("'\(text.prefix(80))' is not an address range; expected CIDR notation such as 10.0.0.0/8 or fd00::/8")
        }
        let maxBits = address.isIPv4 ? 32 : 128
        var bits = maxBits
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maxBits).contains(value) else {
                throw OptionError("'\(text.prefix(80))' has a bad prefix length; expected /0 to /\(maxBits)")
            }
            bits = value
        }
        base = address
        prefixLength = bits + (address.isIPv4 ? 96 : 0)
        description = text
    }

    /// Whether `address` lies in this block.
    public func contains(_ address: IPAddress) -> Bool {
        var remaining = prefixLength
        for index in 0..<16 where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if address.bytes[index] & mask != base.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
