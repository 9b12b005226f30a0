import Testing
@testable import Shared

@Suite struct AddressRangeTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false),
        ("169.254.0.0/16", "169.254.169.254", true), ("169.254.0.0/16", "::ffff:169.254.169.254", true),
        ("127.0.0.1", "127.0.0.1", true), ("127.0.0.1", "127.0.0.2", false),
        ("fd00::/8", "fd12::1", true), ("fd00::/8", "fe80::1", false), ("0.0.0.0/0", "8.8.8.8", true),
        ("0.0.0.0/0", "2001:db8::1", false), ("::/0", "2001:db8::1", true), ("192.168.1.128/25", "192.168.1.200", true),
        ("192.168.1.128/25", "192.168.1.100", false),
    ])
    func containment(range: String, address: String, expected: Bool) throws {
        #expect(try AddressRange(range).contains(ip(address)) == expected)
    }

    @Test(arguments: ["", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "example.com", "10.0.0.0/x", "10.0.0.0/8/1", "10.0.0.0/-1"])
    func malformedRangesAreRefusedWithTheExpectedForm(_ text: String) {
        #expect(throws: OptionError.self) { try AddressRange(text) }
    }

    @Test func addressesPrintInTheirUsualForm() throws {
        #expect(ip("::ffff:10.1.2.3").description == "10.1.2.3")
        #expect(ip("fd00:ec2::254").description == "fd00:ec2::254")
    }
}

@Suite struct OutboundURLTests {
    @Test func plainURLsParse() throws {
        let url = try OutboundURL("HTTP://Example.COM:8080/v1/x?a=b")
        #expect(url.scheme == "http" && url.host == "example.com" && url.port == 8080 && url.pathAndQuery == "/v1/x?a=b")
        #expect(!url.isOrigin)
        let v6 = try OutboundURL("https://[fd00::1]:443")
        #expect(v6.host == "fd00::1" && v6.port == 443 && v6.isOrigin && v6.literalAddress == IPAddress("fd00::1"))
        #expect(try OutboundURL("http://10.0.0.1/").isOrigin)
    }

    @Test(arguments: [
        "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "dict://x:11211/", "ftp://x/", "ldap://x/", "HTTPX://x/",
        "http://user:pass@example.com/", "http://example.com@169.254.169.254/", "http://exa mple.com/", "http://example.com/\u{0}",
        "http://example.com/#frag", "http://%31%32%37.0.0.1/", "http://example.com:0/", "http://example.com:65536/",
        "http://example.com:+80/", "http://[::1/", "http://[1.2.3.4]/", "http:///path", "http://", "example.com:80", "//example.com/",
        "http://ex\\ample.com/",
    ])
    func everyOtherFormIsRefused(_ text: String) {
        #expect(throws: EgressError.self) { try OutboundURL(text) }
    }

    @Test func overlongURLsAreRefused() {
        #expect(throws: EgressError.self) { try OutboundURL("http://x/" + String(repeating: "a", count: 3000)) }
    }
}

@Suite struct EgressPolicyTests {
    @Test(arguments: ["169.254.169.254", "::ffff:169.254.169.254", "100.100.100.200", "fd00:ec2::254", "0.0.0.0", "fe80::1",
                      "224.0.0.1", "255.255.255.255", "::"])
    func metadataAndLinkLocalAreRefusedEvenWhenAllowed(_ address: String) throws {
        let everything = EgressPolicy(allow: [try AddressRange("0.0.0.0/0"), try AddressRange("::/0")], allowsLoopback: true)
        let refusal = try #require(everything.refusal(ip(address)))
        #expect(refusal.message.contains("never called"))
    }

    @Test func loopbackNeedsALoopbackListenerOrAnExplicitAllow() throws {
        let loopback = ip("127.0.0.5")
        #expect(EgressPolicy(allowsLoopback: true).refusal(loopback) == nil)
        #expect(EgressPolicy(allowsLoopback: false).refusal(loopback)?.message.contains("--egress-allow 127.0.0.0/8") == true)
        #expect(EgressPolicy(allow: [try AddressRange("127.0.0.0/8")], allowsLoopback: false).refusal(loopback) == nil)
        #expect(EgressPolicy(allowsLoopback: false).refusal(ip("::1")) != nil)
    }

    @Test func operatorListsDecide() throws {
        let policy = EgressPolicy(allow: [try AddressRange("10.0.0.0/8")], deny: [try AddressRange("10.9.0.0/16")], allowsLoopback: false)
        #expect(policy.refusal(ip("10.1.2.3")) == nil)
        #expect(policy.refusal(ip("10.9.2.3"))?.message.contains("--egress-deny") == true)
        #expect(policy.refusal(ip("192.168.1.1"))?.message.contains("not in --egress-allow") == true)
        let open = EgressPolicy(deny: [try AddressRange("192.168.0.0/16")], allowsLoopback: false)
        #expect(open.refusal(ip("8.8.8.8")) == nil)
        #expect(open.refusal(ip("192.168.3.4")) != nil)
    }

    @Test func urlChecksCatchLiteralAddressesAndLocalhost() throws {
        let policy = EgressPolicy(allowsLoopback: false)
        #expect(throws: EgressError.self) { try policy.check(url: "http://169.254.169.254/latest/meta-data/") }
        #expect(throws: EgressError.self) { try policy.check(url: "http://localhost:8080/") }
        #expect(throws: EgressError.self) { try policy.check(url: "http://[::ffff:127.0.0.1]:8080/") }
        #expect(try policy.check(url: "http://peer.example:8080/v1").host == "peer.example")
    }

    @Test func flagsBuildThePolicy() throws {
        let options = try ServiceOptions(service: "test", specs: OptionSpec.common, arguments: [
            "--host", "0.0.0.0", "--egress-allow", "10.0.0.0/8, fd00::/8", "--egress-deny", "10.9.0.0/16",
        ], environment: [:])
        let policy = try EgressPolicy(options)
        #expect(!policy.allowsLoopback && policy.allow.count == 2 && policy.deny.count == 1)
        let local = try EgressPolicy(ServiceOptions(service: "test", specs: OptionSpec.common, arguments: [], environment: [:]))
        #expect(local.allowsLoopback)
        let bad = try ServiceOptions(service: "test", specs: OptionSpec.common, arguments: ["--egress-deny", "10.0.0.0/99"], environment: [:])
        #expect(throws: OptionError.self) { try EgressPolicy(bad) }
    }
}

/// An address the test writes itself (so a typo fails loudly).
private func ip(_ text: String) -> IPAddress { IPAddress(text)! }
