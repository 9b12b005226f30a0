/// SHA-1 (FIPS 180-4): the Kademlia id of a key or a public key, as in the reference.
///
/// In Swift rather than libcrypto: the inputs are short keys, for which OpenSSL 3's
/// `EVP_Digest` spends more on fetching the algorithm than on hashing, and a DHT node
/// that never opens a TLS connection then needs no more of libcrypto than libcurl loads.
/// Not for security: the ids only spread keys over the ring.
public enum SHA1Digest {
    /// The 20-byte digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        let whole = bytes.count / 64 * 64
        bytes.withUnsafeBytes { buffer in
            for start in stride(from: 0, to: whole, by: 64) {
                compress(&state, UnsafeRawBufferPointer(rebasing: buffer[start..<start + 64]))
            }
        }
        // The tail, a 0x80 byte, zeros, then the length in bits, big-endian: one or two blocks.
        var tail = Array(bytes[whole...])
        tail.append(0x80)
        tail += [UInt8](repeating: 0, count: (tail.count <= 56 ? 56 : 120) - tail.count)
        let bits = UInt64(bytes.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        tail.withUnsafeBytes { buffer in
            for start in stride(from: 0, to: buffer.count, by: 64) {
                compress(&state, UnsafeRawBufferPointer(rebasing: buffer[start..<start + 64]))
            }
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(20)
        for word in [state.0, state.1, state.2, state.3, state.4] {
            digest += [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)]
        }
        return digest
    }

    /// One 64-byte block folded into the state.
    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ block: UnsafeRawBufferPointer) {
        var w = (0..<16).map { UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        w.reserveCapacity(80)
        for t in 16..<80 { w.append(rotate(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1)) }
        var (a, b, c, d, e) = state
        for t in 0..<80 {
            let (f, k): (UInt32, UInt32) = switch t {
            case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (b ^ c ^ d, 0xCA62_C1D6)
            }
            let next = rotate(a, 5) &+ f &+ e &+ k &+ w[t]
            (e, d, c, b, a) = (d, c, rotate(b, 30), a, next)
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
    }

    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 { value << count | value >> (32 - count) }
}
