import Shared

/// A newcomer's download of the latest state from the donors declared under
/// `{prefix}.all_averagers`: highest priority first, equal priorities in
/// random order, in chunks each bounded by a timeout; a busy donor sends the
/// newcomer to the next, so many newcomers spread over the donors.
struct StateLoader {
    let me: PeerID
    let dht: any AveragerDHT
    let http: HTTPClient
    let chunkBytes: Int
    let chunkTimeout: Double
    /// The largest state downloaded: a donor announcing more is not believed.
    let maxStateBytes: Int
    /// How the donors are asked to send the state (`StateCompression`).
    var codec: CompressionCodec = .none

    /// The DHT key under which donors of `prefix` declare their priority.
    static func donorKey(_ prefix: String) -> String { "\(prefix).all_averagers" }

    /// Donors by descending priority, ties shuffled.
    static func order<G: RandomNumberGenerator>(_ members: [DHTMember], excluding me: PeerID, using generator: inout G) -> [PeerID] {
        members.compactMap { member in member.value.doubleValue.map { (member.peer, $0, UInt64.random(in: 0...UInt64.max, using: &generator)) } }
            .filter { $0.0 != me }
            .sorted { ($0.1, $0.2) > ($1.1, $1.2) }
            .map(\.0)
    }

    /// Downloads the state of `prefix` before `deadline` (monotonic seconds).
    /// - Returns: the donor's bytes, exactly as it stored them (up to the codec's error), and the donor.
    /// - Throws: `AveragerError`: `.notFound` when no donor is declared,
    ///   `.unavailable` when every donor failed or stayed busy until the deadline.
    func load(prefix: String, deadline: Double) async throws(AveragerError) -> (bytes: [UInt8], donor: PeerID) {
        let members: [DHTMember]
        do { members = try await dht.members(key: Self.donorKey(prefix)) } catch {
            throw AveragerError(.unavailable, "cannot read the donors of '\(prefix)' from the DHT: \(error)")
        }
        var generator = SystemRandom()
        let donors = Self.order(members, excluding: me, using: &generator)
        guard !donors.isEmpty else { throw AveragerError(.notFound, "no averager shares state for prefix '\(prefix)'") }
        var failures: [String] = []
        while Clock.now < deadline {
            var anyBusy = false
            for donor in donors where Clock.now < deadline {
                do {
                    do {
                        return (try await download(prefix: prefix, from: donor, codec: codec, deadline: deadline), donor)
                    } catch where error.kind == .unprocessable {
                        // This donor's state cannot travel compressed: take it as it is.
                        return (try await download(prefix: prefix, from: donor, codec: .none, deadline: deadline), donor)
                    }
                } catch where error.kind == .busy {
                    anyBusy = true
                } catch {
                    failures.append("\(donor): \(error.message)")
                }
            }
            guard anyBusy else { break }
            // Every reachable donor is busy: wait a little (with jitter, so that newcomers spread) and retry.
            try? await Task.sleep(for: .seconds(Double.random(in: 0.02...0.1, using: &generator)))
        }
        throw AveragerError(.unavailable, "could not download the state of '\(prefix)' from \(donors.count) donor(s) before the deadline"
            + (failures.isEmpty ? " (all busy)" : ": " + failures.suffix(3).joined(separator: "; ")))
    }

    /// Fetches one donor's snapshot chunk by chunk, pinned to its first version.
    private func download(prefix: String, from donor: PeerID, codec: CompressionCodec, deadline: Double) async throws(AveragerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var version: String?
        var total = Int.max
        while bytes.count < total {
            var headers: [(name: String, value: String)] = [("Range", "bytes=\(bytes.count)-\(bytes.count + chunkBytes - 1)"), ("X-Hivemind-Peer", me)]
            if let version { headers.append(("If-Match", "\"\(version)\"")) }
            let timeout = min(chunkTimeout, max(0.001, deadline - Clock.now))
            let response: HTTPClientResponse
            do {
                // A chunk is at most what was asked for: a donor that sends more is cut off there.
                response = try await http.send(HTTPClientRequest(url: "\(donor)/v1/state?prefix=\(prefix)&codec=\(codec.rawValue)", headers: headers, timeout: timeout,
                                                                 maxResponseBytes: chunkBytes))
            } catch {
                let kind: AveragerError.Kind = switch (error.status, error.code) {
                case (503, "busy"): .busy
                case (422, _) where codec != .none: .unprocessable
                default: .unavailable
                }
                throw AveragerError(kind, error.message)
            }
            guard let range = response.headers["content-range"], let slash = range.lastIndex(of: "/"),
                  let size = Int(range[range.index(after: slash)...]), size >= 0 else {
                throw AveragerError(.unavailable, "the donor's answer lacks a Content-Range")
            }
            guard size <= maxStateBytes else {
                throw AveragerError(.unavailable, "the donor announces a state of \(size) bytes; this averager takes at most \(maxStateBytes) (--max-state-bytes)")
            }
            guard total == Int.max || size == total else { throw AveragerError(.unavailable, "the donor's state changed size during the download") }
            total = size
            version = version ?? response.headers["etag"].map { String($0.filter { $0 != "\"" }) }
            guard bytes.count + response.body.count <= total else { throw AveragerError(.unavailable, "the donor sent more bytes than its state has") }
            bytes += response.body
            guard !response.body.isEmpty || bytes.count >= total else { throw AveragerError(.unavailable, "the donor sent an empty chunk") }
        }
        guard codec != .none else { return bytes }
        do {
            return try StateCompression.decompress(bytes, maxBytes: maxStateBytes)
        } catch {
            throw AveragerError(.unavailable, "the donor's compressed state does not decode within --max-state-bytes (\(maxStateBytes)): \(error.message)")
        }
    }
}
