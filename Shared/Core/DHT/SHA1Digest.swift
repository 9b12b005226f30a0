/// SHA-1 (FIPS 180-4): the Kademlia id of a key or a public key, as in the reference.
///
/// In Swift rather than libcrypto: a DHT node that never opens a TLS connection then
/// needs no more of libcrypto than libcurl's set-up loads (OpenSSL 3's first SHA-1
/// brought 0.3 MB more of it into memory). Not for security: the ids only spread
/// keys over the ring.
public enum SHA1Digest {
    /// The 20-byte digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        bytes.withUnsafeBytes { buffer in
            let whole = buffer.count / 64 * 64
            for start in stride(from: 0, to: whole, by: 64) {
                compress(&state, UnsafeRawBufferPointer(rebasing: buffer[start..<start + 64]))
            }
            // The tail: the rest, a 0x80 byte, zeros, then the length in bits, big-endian; one block or two.
            withUnsafeTemporaryAllocation(byteCount: 128, alignment: 8) { tail in
                let rest = buffer.count - whole, end = rest < 56 ? 64 : 128
                tail.initializeMemory(as: UInt8.self, repeating: 0)
                tail.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[whole...]))
                tail[rest] = 0x80
                tail.storeBytes(of: (UInt64(buffer.count) &* 8).bigEndian, toByteOffset: end - 8, as: UInt64.self)
                for start in stride(from: 0, to: end, by: 64) {
                    compress(&state, UnsafeRawBufferPointer(rebasing: tail[start..<start + 64]))
                }
            }
        }
        return [UInt8](unsafeUninitializedCapacity: 20) { digest, count in
            let words = [state.0, state.1, state.2, state.3, state.4]
            for (index, word) in words.enumerated() {
                UnsafeMutableRawBufferPointer(digest).storeBytes(of: word.bigEndian, toByteOffset: 4 * index, as: UInt32.self)
            }
            count = 20
        }
    }

    /// One 64-byte block folded into the state.
    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ block: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for t in 0..<16 { w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
            for t in 16..<80 { w[t] = rotate(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
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
    }

    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 { value << count | value >> (32 - count) }
}
