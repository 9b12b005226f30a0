@testable import Gateway
@testable import Shared

// The trust layer: what a service agrees to call, and the seal that makes a routing record the gateway's own.

extension FuzzTarget {
    /// URLs from records and requests (expert hosts, donors, peers) before anything calls them, and
    /// the address ranges of `--egress-allow` and `--egress-deny`.
    static let egress = FuzzTarget(
        name: "egress",
        about: "OutboundURL, IPAddress and AddressRange parsing; EgressPolicy never lets a URL reach an address it refuses",
        seeds: { TrustSeeds.urls.enumerated().map { ("url-\($0.offset)", Array(seed: $0.element)) } }
    ) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        if let url = try? OutboundURL(text) {
            fuzzCheck((url.scheme == "http" || url.scheme == "https") && (url.port.map { (1...65535).contains($0) } ?? true),
                      "OutboundURL accepted scheme \(url.scheme) and port \(String(describing: url.port)) in \(text)")
            fuzzCheck(!url.host.isEmpty && !url.host.contains(where: { "@/?#[] %\\".contains($0) }), "OutboundURL accepted host '\(url.host)' in \(text)")
            // Written again from its parts, it is the same URL.
            let host = url.host.contains(":") ? "[\(url.host)]" : url.host
            let again = "\(url.scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")\(url.pathAndQuery)"
            fuzzCheck((try? OutboundURL(again)) == url, "\(text) parsed as \(url), which \(again) does not")
            for policy in TrustSeeds.policies {
                guard (try? policy.check(url: text)) != nil, let address = url.literalAddress else { continue }
                fuzzCheck(policy.refusal(address) == nil && !EgressPolicy.alwaysDenied.contains { $0.contains(address) },
                          "a policy let \(text) through to \(address)")
            }
        }
        for piece in text.split(separator: ",").prefix(8) {
            if let address = IPAddress(piece) {
                fuzzCheck(IPAddress(address.description) == address, "\(piece) reads as \(address), which reads back otherwise")
            }
            if let range = try? AddressRange(piece) {
                fuzzCheck(range.contains(range.base) && (0...128).contains(range.prefixLength), "\(piece) gave a range without its own base")
            }
        }
    }

    /// Seals that come back with backward calls: only the gateway's own, for this record and batch, pass.
    static let routingSeal = FuzzTarget(
        name: "routing-seal",
        about: "RoutingSeal.verify on arbitrary seals and records (first line: the seal); a genuine seal still verifies",
        seeds: { TrustSeeds.seals }
    ) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        let (sealText, routing) = text.firstIndex(of: "\n").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, "[]")
        let x = TrustSeeds.x
        let now = TrustSeeds.now
        let genuine = TrustSeeds.seal.seal(routing: routing, x: x, now: now)
        do {
            try TrustSeeds.seal.verify(sealText, routing: routing, x: x, now: now)
            // An HMAC cannot be guessed: what passes is the genuine seal, its expiry perhaps spelled otherwise ("+0...").
            let parts = sealText.split(separator: ":")
            fuzzCheck(Int(parts[0]) == Int(genuine.split(separator: ":")[0]) && parts[1].lowercased() == genuine.split(separator: ":")[1],
                      "the seal \(sealText) passed for a record it was not issued for")
        } catch {}
        do { try TrustSeeds.seal.verify(genuine, routing: routing, x: x, now: now) } catch { fuzzCheck(false, "a genuine seal failed: \(error)") }
        if routing != "[]" {
            fuzzCheck((try? TrustSeeds.seal.verify(genuine, routing: "[]", x: x, now: now)) == nil, "a seal passed for another record")
        }
    }
}

enum TrustSeeds {
    static let urls = [
        "http://127.0.0.1:8000/v1/experts/ffn.0.1/forward?codec=none", "https://[::1]:443/", "http://169.254.169.254/latest/meta-data",
        "http://user:secret@host/", "ftp://x/y", "http://[::ffff:127.0.0.1]:80", "http://Example.COM", "http://[fe80::1%25eth0]/",
        "10.0.0.0/8,fd00::/8,::ffff:1.2.3.4,127.0.0.1/33,1.2.3.4",
    ]

    static let policies = [
        EgressPolicy(),
        EgressPolicy(allowsLoopback: false),
        EgressPolicy(allow: [try! AddressRange("10.0.0.0/8"), try! AddressRange("fd00::/8")], deny: [try! AddressRange("10.1.0.0/16")],
                     allowsLoopback: false),
    ]

    static let seal = RoutingSeal(secret: "fuzz")
    static let now = 1.7e9
    static let x = try! Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])

    static var seals: [(name: String, bytes: [UInt8])] {
        let routing = #"[[{"uid":"ffn.0.1","url":"http://127.0.0.1:8000","weight":1.0}],[]]"#
        return [("genuine", Array(seed: seal.seal(routing: routing, x: x, now: now) + "\n" + routing)),
                ("expired", Array(seed: seal.seal(routing: routing, x: x, now: 1) + "\n" + routing)),
                ("malformed", Array(seed: "123:zz\n" + routing))]
    }
}
