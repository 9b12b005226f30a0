import Foundation
import Shared

/// What the trainer averages at the end of each collaborative epoch.
enum OptimizerMode: String {
    /// The reference's default: accumulate gradients to the run's target batch
    /// size, average them (weighted by samples), then take one optimizer step.
    case gradients
    /// Step locally on every batch; average the parameters at each epoch's end.
    case localUpdates = "local-updates"
}

/// The trainer's side of the averager's collaborative optimizer
/// (`/v1/runs/{run}/...`, see openapi/averager.yaml): progress reports, epoch
/// steps, state loading and sharing. Every call has a timeout; the caller
/// decides what a failure means (training goes on alone).
struct CollaborativeOptimizer {
    let averager: String
    let run: String
    let trainer: String
    let targetBatchSize: Int
    let averagingTimeout: Double
    /// Compression of the step's all-reduce between averagers.
    var codec: CompressionCodec = .none
    /// Compression of the state downloaded from a peer.
    var stateCodec: CompressionCodec = .none
    /// The averager's `--run-token`, for the calls that change what others download.
    let runToken: String?
    private let http = HTTPClient.shared

    private var authorization: [(name: String, value: String)] { runToken.map { [("Authorization", "Bearer \($0)")] } ?? [] }

    private func sendJSON(_ method: String, _ url: String, _ json: JSON, timeout: Double) async throws -> HTTPClientResponse {
        try await http.send(HTTPClientRequest(method: method, url: url, headers: [("Content-Type", "application/json")] + authorization,
                                              body: json.serializedBytes(), timeout: timeout))
    }

    /// The prefix the run's state is shared under.
    var statePrefix: String { "\(run)_state" }

    /// `PUT /v1/runs/{run}`. Progress is re-read every 0.2 to 2 s rather than
    /// the reference's 0.5 to 10 s: a local mesh ends an epoch every fraction of a second.
    func configure() async throws {
        _ = try await sendJSON("PUT", "\(averager)/v1/runs/\(run)",
                               ["target_batch_size": .int(targetBatchSize), "averaging_timeout": .double(averagingTimeout),
                                "min_refresh_period": 0.2, "max_refresh_period": 2],
                               timeout: 5)
    }

    struct Progress {
        let action: String
        let epoch: Int
        let globalEpoch: Int
        let samplesAccumulated: Int
    }

    /// `POST /v1/runs/{run}/progress`.
    func report(epoch: Int, samples: Int, samplesPerSecond: Double, loss: Double?) async throws -> Progress {
        let response = try await sendJSON("POST", "\(averager)/v1/runs/\(run)/progress",
                                          ["trainer": .string(trainer), "epoch": .int(epoch), "samples": .int(samples),
                                           "samples_per_second": .double(samplesPerSecond), "loss": loss.map(JSON.double) ?? .null],
                                          timeout: 5)
        let reader = try JSONObjectReader(try response.json())
        return Progress(action: try reader.string("action"), epoch: try reader.int("epoch"), globalEpoch: try reader.int("global_epoch"),
                        samplesAccumulated: try reader.int("samples_accumulated"))
    }

    /// `POST /v1/runs/{run}/step`: the tensors' samples-weighted average over the epoch's trainers, the new epoch, and whether peers took part.
    func step(epoch: Int, samples: Int, tensors: [(name: String, tensor: Tensor)]) async throws -> (tensors: TensorBundle, epoch: Int, averaged: Bool) {
        let url = "\(averager)/v1/runs/\(run)/step?trainer=\(trainer)&epoch=\(epoch)&samples=\(samples)&codec=\(codec.rawValue)"
        let response = try await http.post(url, bytes: try TensorBundle(tensors).encode(), headers: authorization, timeout: averagingTimeout + 15)
        let bundle = try TensorBundle.decode(response.body)
        let record = try JSON.parse(bundle.metadata["step"] ?? "{}")
        guard let next = record["epoch"]?.intValue else { throw OptionError("the averager's step answer names no epoch") }
        return (bundle, next, record["outcome"]?.stringValue == "averaged")
    }

    /// `DELETE /v1/runs/{run}/trainers/{trainer}`.
    func leave() async {
        _ = try? await http.send(HTTPClientRequest(method: "DELETE", url: "\(averager)/v1/runs/\(run)/trainers/\(trainer)", headers: authorization, timeout: 5))
    }

    /// Offers the trainer's state to newcomers, preferred by epoch.
    func share(_ state: [UInt8], epoch: Int) async {
        _ = try? await http.send(HTTPClientRequest(method: "PUT", url: "\(averager)/v1/state?prefix=\(statePrefix)&priority=\(epoch)",
                                                   headers: [("Content-Type", "application/octet-stream")] + authorization, body: state, timeout: 5))
    }

    /// The latest state a peer shares, or nil if none does.
    func loadState() async -> [UInt8]? {
        let request = HTTPClientRequest(method: "POST", url: "\(averager)/v1/state/load?prefix=\(statePrefix)&timeout=5&codec=\(stateCodec.rawValue)",
                                        timeout: 15)
        return try? await http.send(request).body
    }
}
