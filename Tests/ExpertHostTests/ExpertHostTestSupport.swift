import Shared
@testable import ExpertHost

/// Runs `body` against an expert host built from command-line `arguments`,
/// served on a port chosen by the OS; stops both afterwards, also on failure.
func withExpertHost<T>(_ arguments: [String], _ body: (_ url: String, _ host: ExpertHost) async throws -> T) async throws -> T {
    let options = try ServiceOptions(service: "test-host", specs: OptionSpec.common + ExpertHostConfiguration.options,
                                     arguments: arguments, environment: [:])
    let configuration = try ExpertHostConfiguration(options)
    let logger = Logger(service: "test-host", level: .error)
    let host = try ExpertHost(configuration: configuration, uids: await configuration.chooseUIDs(dht: nil, identity: Identity(), logger: logger),
                              metrics: Metrics(namespace: "test"), logger: logger)
    let server = try HTTPServer(configuration: HTTPServerConfiguration(), router: host.makeRouter(),
                                metrics: host.metrics, logger: logger)
    defer { host.runtime.shutdown() }
    do {
        let result = try await body("http://127.0.0.1:\(server.port)", host)
        await server.stop(timeout: 10)
        return result
    } catch {
        await server.stop(timeout: 10)
        throw error
    }
}

/// Random inputs fitting a schema: the batch first, 5 for other free
/// dimensions, ones for inputs after the first (masks).
func sampleInputs(_ schema: ExpertSchema, batch: Int, generator: inout SplitMix64) -> [Tensor] {
    schema.inputs.enumerated().map { index, input in
        let shape = input.shape.enumerated().map { $0.offset == 0 ? batch : ($0.element == -1 ? 5 : $0.element) }
        return index == 0 ? Tensor.randomNormal(shape: shape, using: &generator) : Tensor(repeating: 1, shape: shape)
    }
}

/// Output gradients shaped like the outputs for `inputs`.
func sampleGradients(like outputs: [Tensor], generator: inout SplitMix64) -> [Tensor] {
    outputs.map { Tensor.randomNormal(shape: $0.shape, using: &generator) }
}

/// POSTs tensors named `prefix.i` and decodes the answer.
func post(_ url: String, _ groups: [(String, [Tensor])], headers: [(name: String, value: String)] = []) async throws -> TensorBundle {
    let named = groups.flatMap { prefix, tensors in tensors.enumerated().map { ("\(prefix).\($0.offset)", $0.element) } }
    let response = try await HTTPClient.shared.post(url, bytes: try TensorBundle(named).encode(), headers: headers)
    return try TensorBundle.decode(response.body)
}

func maxRelativeError(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "shapes \(a.shape) and \(b.shape) differ")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
}
