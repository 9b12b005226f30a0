import COpenSSL
import Testing
@testable import SharedCore

/// Ed25519 (libsodium) and SHA-1 (ours), against published answers: RFC 8032
/// section 7.1 (tests 1 and 2, also checked with Python's `cryptography`) and
/// FIPS 180 ("abc"); SHA-1 also against libcrypto's.
@Suite struct Ed25519Tests {
    static let vectors: [(privateKey: String, publicKey: String, message: String, signature: String)] = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ]

    @Test(arguments: vectors.indices)
    func matchesRFC8032(index: Int) throws {
        let vector = Self.vectors[index]
        let privateKey = try #require([UInt8](hex: vector.privateKey)), message = try #require([UInt8](hex: vector.message))
        #expect(Ed25519.publicKey(privateKey: privateKey)?.hexString == vector.publicKey)
        let signature = try #require(Ed25519.signature(for: message, privateKey: privateKey))
        #expect(signature.hexString == vector.signature)
        let publicKey = try #require([UInt8](hex: vector.publicKey))
        #expect(Ed25519.isValidSignature(signature, for: message, publicKey: publicKey))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!Ed25519.isValidSignature(flipped, for: message, publicKey: publicKey))
        #expect(!Ed25519.isValidSignature(signature, for: message + [0], publicKey: publicKey))
        // Asked again, the answer comes from the cache of recent valid signatures, which is keyed
        // on key, signature and message alike: another key's claim to the signature stays refused.
        #expect(Ed25519.isValidSignature(signature, for: message, publicKey: publicKey))
        let otherKey = try #require(Ed25519.publicKey(privateKey: Ed25519.newPrivateKey()))
        #expect(!Ed25519.isValidSignature(signature, for: message, publicKey: otherKey))
    }

    /// An identity imports its key once and signs with it from any thread: every signature
    /// is still the RFC's, however many tasks sign at once.
    @Test(arguments: vectors.indices)
    func anIdentitySignsAsTheRFCSaysFromManyTasksAtOnce(index: Int) async throws {
        let vector = Self.vectors[index]
        let identity = try Identity(privateKeyHex: vector.privateKey)
        let message = try #require([UInt8](hex: vector.message))
        #expect(identity.publicKeyHex == vector.publicKey)
        let signatures = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<200).map { _ in identity.signature(for: message).hexString } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(signatures.count == 1600 && Set(signatures) == [vector.signature])
    }

    @Test func wrongLengthsAreRefusedNotTrapped() {
        #expect(Ed25519.publicKey(privateKey: [1, 2, 3]) == nil)
        #expect(Ed25519.signature(for: [], privateKey: []) == nil)
        #expect(!Ed25519.isValidSignature([0], for: [], publicKey: [UInt8](repeating: 0, count: 32)))
        #expect(Ed25519.newPrivateKey() != Ed25519.newPrivateKey())
    }

    @Test func sha1OfABC() {
        #expect(SHA1Digest.hash(Array("abc".utf8)).hexString == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1Digest.hash([]).hexString == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        // FIPS 180's two-block message (56 bytes: the padding spills into a second block).
        #expect(SHA1Digest.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    /// Every length from 0 to 300 bytes (each padding case, one to five blocks) agrees with libcrypto.
    @Test func sha1AgreesWithLibcrypto() {
        var generator = SplitMix64(seed: 180)
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var expected = [UInt8](repeating: 0, count: 20)
            var size: UInt32 = 0
            #expect(EVP_Digest(bytes, bytes.count, &expected, &size, EVP_sha1(), nil) == 1)
            let ours = SHA1Digest.hash(bytes)
            #expect(ours == expected, "length \(length)")
            if ours != expected { return }
        }
    }
}

/// The table of recently valid signatures: what it remembers, what replaces what, and that its
/// memory is fixed.
@Suite struct RecentSignaturesTests {
    /// A digest whose slot bits (bytes 16..<24) are `slot` and whose tag starts with `tag`.
    static func digest(slot: UInt8, tag: UInt8) -> [UInt8] {
        var bytes = [UInt8](repeating: 7, count: 32)
        bytes[0] = tag
        bytes[16..<24] = [0, 0, 0, 0, 0, 0, 0, slot][...]
        return bytes
    }

    @Test func remembersWhatWasInsertedAndNothingElse() {
        var table = RecentSignatures(slots: 8)
        let a = Self.digest(slot: 1, tag: 1), b = Self.digest(slot: 2, tag: 1)
        #expect(!table.contains(a))
        table.insert(a)
        #expect(table.contains(a) && !table.contains(b))
        // Same slot, another tag: not a match.
        #expect(!table.contains(Self.digest(slot: 1, tag: 2)))
        // Slot bits past the table's size wrap: slot 9 of 8 is slot 1, and its tag differs.
        #expect(!table.contains(Self.digest(slot: 9, tag: 2)))
        #expect(!table.contains([1, 2, 3]))
    }

    @Test func aNewerDigestForTheSameSlotReplacesTheOlder() {
        var table = RecentSignatures(slots: 8)
        let older = Self.digest(slot: 3, tag: 1), newer = Self.digest(slot: 11, tag: 2)
        table.insert(older)
        table.insert(newer)
        #expect(table.contains(newer) && !table.contains(older))
    }

    @Test func anEmptySlotMatchesNoDigest() {
        let table = RecentSignatures(slots: 4)
        #expect(!table.contains([UInt8](repeating: 0, count: 32)))
    }

    /// 100,000 different digests into 1,024 slots: exactly the last of each slot is remembered.
    @Test func holdsOneDigestPerSlotHoweverManyArePut() {
        var table = RecentSignatures(slots: 1024)
        let digests = (0..<100_000).map { index in Array("record \(index)".utf8).withUnsafeBytes(MessageAuthentication.sha256) }
        for digest in digests { table.insert(digest) }
        #expect(table.contains(digests.last!))
        #expect(digests.count { table.contains($0) } == 1024)
    }
}
