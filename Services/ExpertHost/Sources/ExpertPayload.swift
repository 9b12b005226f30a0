import Shared

/// Expert tensors on the wire: a safetensors body whose tensors are named
/// `input.0`, `input.1`, ... (and `grad_output.0`, ... for backward), float
/// dtypes or compressed with a Shared codec; responses likewise
/// (`output.*`, `grad_input.*`) in the codec the request asks for.
enum ExpertPayload {
    /// Reads the tensors a request must carry, refusing missing and unexpected ones.
    /// - Parameter groups: for each name prefix (`input`, `grad_output`), the schemas it must match, in order.
    static func decode(_ body: [UInt8], groups: [(prefix: String, schemas: [TensorSchema])]) throws(HTTPError) -> [[Tensor]] {
        let expected = groups.flatMap { group in group.schemas.indices.map { "\(group.prefix).\($0)" } }
        let bundle: TensorBundle
        do {
            bundle = try TensorBundle.decode(body)
        } catch {
            throw .badRequest("the body must be a safetensors payload with \(expected.joined(separator: ", ")): \(error.message)")
        }
        let unexpected = bundle.names.filter { !expected.contains($0) }
        guard unexpected.isEmpty else {
            throw .badRequest("unexpected tensors \(unexpected.joined(separator: ", ")); expected exactly \(describe(groups))")
        }
        return try groups.map { group throws(HTTPError) in
            try group.schemas.indices.map { index throws(HTTPError) in
                guard let tensor = bundle["\(group.prefix).\(index)"] else {
                    throw .badRequest("missing tensor \(group.prefix).\(index); expected exactly \(describe(groups))")
                }
                return tensor
            }
        }
    }

    /// A safetensors response with each group's tensors named `prefix.index`.
    static func encode(_ groups: [(prefix: String, tensors: [Tensor])], codec: CompressionCodec) throws(HTTPError) -> HTTPResponse {
        let named = groups.flatMap { group in group.tensors.enumerated().map { ("\(group.prefix).\($0.offset)", $0.element) } }
        do {
            return .bytes(try TensorBundle(named).encode(codec: codec))
        } catch {
            throw HTTPError.unprocessable("cannot encode the response with codec \(codec.rawValue): \(error.message)")
        }
    }

    /// The schema as a person reads it: `input.0 F32 [*, 1024], input.1 F32 [*, 1024]`.
    static func describe(_ groups: [(prefix: String, schemas: [TensorSchema])]) -> String {
        groups.flatMap { group in
            group.schemas.enumerated().map { index, schema in
                "\(group.prefix).\(index) \(schema.dtype.name) [\(schema.shape.map { $0 == -1 ? "*" : String($0) }.joined(separator: ", "))]"
            }
        }.joined(separator: ", ")
    }
}

extension TensorSchema {
    /// `{"name", "dtype", "shape"}` with -1 for free dimensions (the batch first).
    var json: JSON {
        ["name": .string(name), "dtype": .string(dtype.name), "shape": .array(shape.map { .int($0) })]
    }
}

extension ExpertSchema {
    var json: JSON {
        ["inputs": .array(inputs.map(\.json)), "outputs": .array(outputs.map(\.json))]
    }
}
