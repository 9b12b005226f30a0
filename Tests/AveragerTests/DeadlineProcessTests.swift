import Foundation
import Shared
import Testing
import TestSupport
@testable import Averager

extension Averagers {
    /// A caller's timeout bounds its whole call, queueing included, and a
    /// stopping averager answers every caller: `hivemind-averager` processes.
    @Suite struct DeadlineProcessTests {
        static let quiet = ProcessTests.quiet

        /// What a call answered and when (seconds after `started`).
        struct Answer: Sendable {
            let status: Int
            let code: String?
            let message: String
            let seconds: Double
        }

        static func body() throws -> [UInt8] {
            try Safetensors.encode([("x", try WireTensor(Tensor(zeros: [16])))])
        }

        /// A call's answer: 200 or the error's status and code.
        static func call(_ client: HTTPClient, _ url: String, body: [UInt8] = [], since started: Double) async -> Answer {
            do {
                let response = try await client.post(url, bytes: body, timeout: 120)
                return Answer(status: response.status, code: nil, message: "", seconds: Clock.now - started)
            } catch {
                return Answer(status: error.status ?? 0, code: error.code, message: error.serverMessage, seconds: Clock.now - started)
            }
        }

        /// The issue's three cases of a call queued behind an earlier one on
        /// the same prefix, on an averager alone (nobody ever joins): each
        /// answers within its own timeout plus 0.5 s, naming what it waited for.
        @Test func queuedCallsAnswerWithinTheirOwnTimeout() async throws {
            let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + ["--dht", dht.url, "--min-matchmaking-time", "1"])
            let client = HTTPClient()
            defer { client.shutdown() }
            let body = try Self.body()
            let url = averager.url
            let started = Clock.now

            // 1 and 2: a round scheduled with timeout 8 (or 60), then an average with timeout 1.
            var rounds: [String] = []
            for (prefix, timeout) in [("eight", 8), ("sixty", 60)] {
                let response = try await client.post("\(url)/v1/rounds?prefix=\(prefix)&timeout=\(timeout)", bytes: body)
                rounds.append(try #require(try response.json()["id"]?.stringValue))
            }
            async let afterEight = Self.call(client, "\(url)/v1/average?prefix=eight&timeout=1", body: body, since: started)
            async let afterSixty = Self.call(client, "\(url)/v1/average?prefix=sixty&timeout=1", body: body, since: started)
            // 3: two averages at once, with 6 s and 1 s.
            async let six = Self.call(client, "\(url)/v1/average?prefix=pair&timeout=6", body: body, since: started)
            try await Task.sleep(for: .milliseconds(50))
            let pairStarted = Clock.now
            async let one = Self.call(client, "\(url)/v1/average?prefix=pair&timeout=1", body: body, since: pairStarted)
            // The round with timeout 8 settles (failed) within 8.5 s of its POST.
            let status = try await client.get("\(url)/v1/rounds/\(rounds[0])?wait=20", timeout: 30).json()
            let roundSettled = Clock.now - started

            for (name, answer) in [("after the 8 s round", await afterEight), ("after the 60 s round", await afterSixty), ("beside the 6 s call", await one)] {
                print("\(name): \(answer.status) \(answer.code ?? "") after \(String(format: "%.2f", answer.seconds)) s: \(answer.message)")
                #expect(answer.status == 504 && answer.code == "timeout", "\(name): \(answer)")
                #expect(answer.message.contains("waiting for the previous round on prefix"), "\(name): \(answer.message)")
                #expect(answer.seconds < 1 + 0.5, "\(name): a 1 s call answered after \(answer.seconds) s")
            }
            let first = await six
            print("the 6 s call: \(first.status) \(first.code ?? "") after \(String(format: "%.2f", first.seconds)) s")
            #expect(first.status == 504 && first.code == "no_group_found", "\(first)")
            #expect(first.seconds < 6 + 0.5, "a 6 s call answered after \(first.seconds) s")
            #expect(status["status"] == "failed" && status["error"]?["code"] == "no_group_found", "\(status)")
            #expect(roundSettled < 8 + 0.5, "the 8 s round settled after \(roundSettled) s")
        }

        /// SIGTERM under 8 calls, 2 of them with a 1 s timeout: those get their
        /// own answer (504) during the 2 s grace, the 6 others 503, and the
        /// averager exits within the grace plus 1 s (3 s under a sanitizer).
        @Test func sigtermUnderEightCallsAnswersEveryCaller() async throws {
            let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + ["--dht", dht.url, "--shutdown-grace", "2"])
            let client = HTTPClient()
            defer { client.shutdown() }
            let body = try Self.body()
            let started = Clock.now
            // Four queued on one prefix, four on prefixes of their own; the last two with a 1 s timeout.
            let queries = (0..<8).map { index in
                "prefix=\(index < 4 ? "shared" : "own\(index)")&timeout=\(index < 6 ? 30 : 1)"
            }
            let calls = queries.map { query in
                Task { await Self.call(client, "\(averager.url)/v1/average?\(query)", body: body, since: started) }
            }
            try await Task.sleep(for: .milliseconds(300))
            let signalled = Clock.now
            averager.signal(SIGTERM)
            #expect(await averager.exitStatus(timeout: 10) == 0)
            let stopped = Clock.now - signalled
            var answers: [Answer] = []
            for call in calls { answers.append(await call.value) }
            print("stopped \(String(format: "%.2f", stopped)) s after SIGTERM; answers: \(answers.map { "\($0.status) \($0.code ?? "")" })")
            #expect(stopped < 2 + Sanitizer.timeScale, "the averager stopped \(stopped) s after SIGTERM with a 2 s grace")
            for (index, answer) in answers.enumerated() {
                if index < 6 {
                    #expect(answer.status == 503 && answer.message.contains("stopped before this request finished"), "call \(index): \(answer)")
                } else {
                    #expect(answer.status == 504, "call \(index): \(answer)")
                }
            }
        }

        /// Durations below their bounds get 400 naming the bound; `If-Match: *` matches the state there is.
        @Test func tinyDurationsAreRefusedAndIfMatchStarIsHonoured() async throws {
            let dht = try await ServiceProcess.start("hivemind-dht", Self.quiet)
            let averager = try await ServiceProcess.start("hivemind-averager", Self.quiet + ["--dht", dht.url])
            let client = HTTPClient()
            defer { client.shutdown() }
            let url = averager.url
            let body = try Self.body()
            for (path, json, mentions) in [
                ("/v1/average?prefix=run&timeout=3.5e-141", nil, "from 0.001 (1 ms)"),
                ("/v1/rounds?prefix=run&timeout=0.0005", nil, "from 0.001 (1 ms)"),
                ("/v1/state/load?prefix=run&timeout=1e-9", nil, "from 0.001 (1 ms)"),
                ("/v1/runs/run", ["target_batch_size": 4, "metadata_expiration": .double(.leastNonzeroMagnitude)] as JSON, "metadata_expiration must be a number of seconds from 1"),
                ("/v1/runs/run", ["target_batch_size": 4, "averaging_timeout": 1e-6] as JSON, "averaging_timeout must be a number of seconds from 0.001"),
                ("/v1/runs/run", ["target_batch_size": 4, "min_refresh_period": 0.001] as JSON, "min_refresh_period must be a number of seconds from 0.05"),
            ] as [(String, JSON?, String)] {
                do {
                    if let json {
                        _ = try await client.send("PUT", url + path, json: json)
                    } else {
                        _ = try await client.post(url + path, bytes: path.hasPrefix("/v1/state") ? [] : body)
                    }
                    Issue.record("\(path) \(json.map { $0.serialized() } ?? "") was accepted")
                } catch {
                    #expect(error.status == 400 && error.serverMessage.contains(mentions), "\(path): \(error.serverMessage)")
                }
            }
            do {
                _ = try await client.get("\(url)/v1/rounds/none?wait=-1")
                Issue.record("wait=-1 was accepted")
            } catch {
                #expect(error.status == 400 && error.serverMessage.contains("wait"), "\(error.serverMessage)")
            }

            let state = try Self.body()
            _ = try await client.send(HTTPClientRequest(method: "PUT", url: "\(url)/v1/state?prefix=run", headers: [("Content-Type", "application/octet-stream")],
                                                        body: state))
            let any = try await client.send(HTTPClientRequest(url: "\(url)/v1/state?prefix=run", headers: [("If-Match", "*")]))
            #expect(any.status == 200 && any.body == state)
            let ranged = try await client.send(HTTPClientRequest(url: "\(url)/v1/state?prefix=run", headers: [("If-Match", "*"), ("Range", "bytes=-4")]))
            #expect(ranged.status == 206 && ranged.body == Array(state.suffix(4)))
        }
    }
}
