import Shared

/// How a part travels between averagers: a safetensors bundle (optionally
/// compressed) with one tensor `part`, and the rest in `__metadata__`.
///
/// Request (`POST /v1/groups/{group_id}/parts/{part}`): metadata `sender`
/// (peer id), `weight` and `accept` (the codec for the answer).
/// Response: the average as `part` (absent when the reducer could combine
/// nothing) and `contributors`, a JSON array of the member indices averaged.
enum PartMessage {
    static func request(values: UnsafeBufferPointer<Float>, sender: PeerID, weight: Double, codec: CompressionCodec) throws(SafetensorsError) -> [UInt8] {
        let metadata = ["sender": sender, "weight": "\(weight)", "accept": codec.rawValue]
        // Uncompressed, the payload is the plain safetensors file a bundle would
        // encode, written straight from the vector without an intermediate tensor.
        if codec == .none { return try Safetensors.encode(name: "part", float32: values, metadata: metadata) }
        return try TensorBundle([("part", try! Tensor(shape: [values.count], scalars: Array(values)))], metadata: metadata).encode(codec: codec)
    }

    static func request(values: Tensor, sender: PeerID, weight: Double, codec: CompressionCodec) throws(SafetensorsError) -> [UInt8] {
        try values.scalars.withUnsafeBufferPointer { buffer in
            Result { () throws(SafetensorsError) in try request(values: buffer, sender: sender, weight: weight, codec: codec) }
        }.get()
    }

    /// Reads a part request.
    /// - Throws: `AveragerError` (`.badRequest`) naming what is malformed.
    static func readRequest(_ body: [UInt8]) throws(AveragerError) -> (values: Tensor, sender: PeerID, weight: Double, accept: CompressionCodec) {
        let bundle: TensorBundle
        do { bundle = try TensorBundle.decode(body) } catch { throw AveragerError(.badRequest, "the part is not a valid safetensors payload: \(error.message)") }
        guard let values = bundle["part"], bundle.tensors.count == 1 else {
            throw AveragerError(.badRequest, "the part payload must hold exactly one tensor named 'part', got \(bundle.names)")
        }
        guard let sender = bundle.metadata["sender"], !sender.isEmpty else {
            throw AveragerError(.badRequest, "the part payload's __metadata__ must name its 'sender' (a peer id)")
        }
        guard let weightText = bundle.metadata["weight"], let weight = Double(weightText) else {
            throw AveragerError(.badRequest, "the part payload's __metadata__ must hold a numeric 'weight', got \(bundle.metadata["weight"] ?? "nothing")")
        }
        let accept: CompressionCodec
        do { accept = try CompressionCodec(parsing: bundle.metadata["accept"] ?? "none") } catch { throw AveragerError(.badRequest, "metadata 'accept': \(error.message)") }
        return (values, sender, weight, accept)
    }

    static func response(_ completion: PartReducer.Completion, codec: CompressionCodec) throws(SafetensorsError) -> [UInt8] {
        let contributors = JSON.array(completion.contributors.map(JSON.int)).serialized()
        let tensors = completion.values.map { [("part", $0)] } ?? []
        return try TensorBundle(tensors, metadata: ["contributors": contributors]).encode(codec: codec)
    }

    /// Reads a reducer's answer.
    /// - Throws: `AveragerError` (`.unprocessable`) if the answer is malformed.
    static func readResponse(_ body: [UInt8]) throws(AveragerError) -> (average: Tensor?, contributors: [Int]) {
        do {
            let bundle = try TensorBundle.decode(body)
            let contributors = try JSON.parse(bundle.metadata["contributors"] ?? "").arrayValue?.compactMap(\.intValue)
            guard let contributors else { throw AveragerError(.unprocessable, "the reducer's answer lacks its contributors") }
            return (bundle["part"], contributors)
        } catch let error as AveragerError {
            throw error
        } catch {
            throw AveragerError(.unprocessable, "the reducer's answer is malformed: \(error)")
        }
    }
}
