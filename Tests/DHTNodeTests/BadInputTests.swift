import Shared
import Testing
@testable import DHTNode

extension DHTTests {
    /// Every kind of bad request gets the right 4xx with a message that says what
    /// was wrong, stores nothing, and leaves the node serving.
    @Suite struct BadInputTests {
        struct Case: Sendable, CustomStringConvertible {
            let description: String
            let method: String
            let path: String
            var body: String?
            var contentType = "application/json"
            let status: Int
            let code: String
            let mentions: String
            /// A key that must still hold nothing afterwards.
            var untouchedKey: String?
        }

        static let owner = Identity()
        static let future = Int(Clock.epoch) + 3_600
        static let longKey = String(repeating: "k", count: 1_025)
        static let hugeValue = "\"" + String(repeating: "v", count: 1 << 20) + "\""

        static let cases: [Case] = [
            Case(description: "malformed JSON", method: "PUT", path: "/v1/records/a", body: #"{"value": 1, "expiration_time": "#,
                 status: 400, code: "bad_request", mentions: "not valid JSON", untouchedKey: "a"),
            Case(description: "key over 1 KiB", method: "PUT", path: "/v1/records/\(longKey)", body: #"{"value": 1, "expiration_time": \#(future)}"#,
                 status: 400, code: "bad_request", mentions: "1025 bytes"),
            Case(description: "key over 1 KiB in a get", method: "GET", path: "/v1/records/\(longKey)",
                 status: 400, code: "bad_request", mentions: "1025 bytes"),
            Case(description: "value over 1 MiB", method: "PUT", path: "/v1/records/b", body: #"{"value": \#(hugeValue), "expiration_time": \#(future)}"#,
                 status: 413, code: "payload_too_large", mentions: "max-value-bytes", untouchedKey: "b"),
            Case(description: "expiration not a number", method: "PUT", path: "/v1/records/c", body: #"{"value": 1, "expiration_time": "tomorrow"}"#,
                 status: 400, code: "bad_request", mentions: "'expiration_time': expected a number", untouchedKey: "c"),
            Case(description: "expiration already past", method: "PUT", path: "/v1/records/d", body: #"{"value": 1, "expiration_time": 1000}"#,
                 status: 422, code: "unprocessable", mentions: "already past", untouchedKey: "d"),
            Case(description: "value missing", method: "PUT", path: "/v1/records/e", body: #"{"expiration_time": \#(future)}"#,
                 status: 400, code: "bad_request", mentions: "'value'", untouchedKey: "e"),
            Case(description: "subkey not a string", method: "PUT", path: "/v1/records/f", body: #"{"value": 1, "subkey": {"x": 1}, "expiration_time": \#(future)}"#,
                 status: 400, code: "bad_request", mentions: "'subkey': expected a string", untouchedKey: "f"),
            Case(description: "malformed owner in subkey", method: "PUT", path: "/v1/records/g", body: #"{"value": 1, "subkey": "[owner:beef]", "expiration_time": \#(future)}"#,
                 status: 400, code: "bad_request", mentions: "not an Ed25519 public key", untouchedKey: "g"),
            Case(description: "owned subkey without signature", method: "PUT", path: "/v1/records/h", body: #"{"value": 1, "subkey": "\#(owner.ownerMarker)", "expiration_time": \#(future)}"#,
                 status: 403, code: "missing_signature", mentions: "needs that key's signature", untouchedKey: "h"),
            Case(description: "bad signature", method: "PUT", path: "/v1/records/i",
                 body: #"{"value": 1, "subkey": "\#(owner.ownerMarker)", "expiration_time": \#(future), "signature": "\#(String(repeating: "ab", count: 64))"}"#,
                 status: 403, code: "bad_signature", mentions: "does not match the owner", untouchedKey: "i"),
            Case(description: "one bad record in a batch", method: "POST", path: "/v1/batch/store",
                 body: #"{"records": [{"key": "j", "value": 1, "expiration_time": \#(future)}, {"key": "j2", "value": 2, "expiration_time": null}]}"#,
                 status: 400, code: "bad_request", mentions: "records[1].expiration_time", untouchedKey: "j"),
            Case(description: "batch get with a number for a key", method: "POST", path: "/v1/batch/get", body: #"{"keys": ["a", 7]}"#,
                 status: 400, code: "bad_request", mentions: "keys[1]"),
            Case(description: "latest that is not a boolean", method: "GET", path: "/v1/records/a?latest=maybe",
                 status: 400, code: "bad_request", mentions: "'latest'"),
            Case(description: "body that is not JSON", method: "PUT", path: "/v1/records/k", body: "value=1", contentType: "text/plain",
                 status: 415, code: "unsupported_media_type", mentions: "application/json", untouchedKey: "k"),
            Case(description: "key that was never stored", method: "GET", path: "/v1/records/nothing-here",
                 status: 404, code: "not_found", mentions: "nothing-here"),
            Case(description: "peer find with a malformed id", method: "POST", path: "/v1/dht/find", body: #"{"ids": ["xyz"]}"#,
                 status: 400, code: "bad_request", mentions: "ids[0]"),
            Case(description: "ping from a file URL", method: "POST", path: "/v1/dht/ping",
                 body: #"{"peer": {"node_id": "\#(String(repeating: "ab", count: 20))", "address": "file:///etc/passwd"}, "validate": true}"#,
                 status: 400, code: "bad_request", mentions: "http(s)://host:port"),
            Case(description: "ping from an address with a path", method: "POST", path: "/v1/dht/ping",
                 body: #"{"peer": {"node_id": "\#(String(repeating: "ab", count: 20))", "address": "http://169.254.169.254:80/latest/meta-data"}}"#,
                 status: 400, code: "bad_request", mentions: "no path, query or fragment"),
            Case(description: "record living past the lifetime bound", method: "PUT", path: "/v1/records/l",
                 body: #"{"value": 1, "expiration_time": 1e300}"#,
                 status: 422, code: "unprocessable", mentions: "--max-record-lifetime", untouchedKey: "l"),
        ]

        @Test(arguments: cases)
        func badRequestGetsAClearError(_ testCase: Case) async throws {
            try await withSimulation(1) { simulation, http in
                let url = simulation.urls[0]
                let request = HTTPClientRequest(method: testCase.method, url: url + testCase.path,
                                                headers: testCase.body == nil ? [] : [("Content-Type", testCase.contentType)],
                                                body: Array((testCase.body ?? "").utf8), timeout: 10)
                do {
                    _ = try await http.send(request)
                    Issue.record("\(testCase): expected HTTP \(testCase.status)")
                } catch let error as HTTPClientError {
                    #expect(error.status == testCase.status, "\(testCase): \(error)")
                    #expect(error.code == testCase.code, "\(testCase): \(error)")
                    #expect(error.serverMessage.contains(testCase.mentions), "\(testCase): \(error.serverMessage)")
                }
                let client = DHTClient(nodes: [url], timeout: 10, http: http)
                if let key = testCase.untouchedKey {
                    #expect(try await client.get(key, latest: true) == nil, "\(testCase): nothing may be stored")
                }
                // The node keeps serving.
                #expect(try await http.get("\(url)/healthz").json() == ["status": "ok"])
                let stored = try await client.store("after", value: "fine", expirationTime: expiring())
                let found = try await client.get("after")
                #expect(stored.stored && found?.value == "fine")
            }
        }
    }
}
