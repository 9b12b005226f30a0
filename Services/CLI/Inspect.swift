import Foundation
import Shared

/// `hivemind dht get KEY` / `hivemind dht put KEY JSON [SECONDS]`.
func runDHT(_ arguments: [String]) async throws {
    let (options, rest) = try parse("hivemind dht", arguments, [OptionSpec("dht", default: "http://127.0.0.1:31337", help: "DHT node URLs")])
    let client = DHTClient(nodes: options.list("dht"), timeout: 5)
    switch rest.first {
    case "get" where rest.count == 2:
        guard let entry = try await client.get(rest[1], latest: true) else { throw OptionError("no record under '\(rest[1])'") }
        print(entry.json.serialized())
    case "put" where rest.count == 3 || rest.count == 4:
        let value = try JSON.parse(rest[2])
        var seconds = 60.0
        if rest.count == 4 {
            do throws(DurationError) {
                seconds = try DurationLimits.parse(rest[3], "SECONDS (the record's lifetime)", in: DurationLimits.minimumExpiration...(365 * 86400))
            } catch {
                throw OptionError(error.message)
            }
        }
        let result = try await client.store(rest[1], value: value, expirationTime: Clock.epoch + seconds)
        print(["stored": .bool(result.stored), "replicas": .int(result.replicas)] as JSON)
    default:
        throw OptionError("usage: hivemind dht [--dht URL] get KEY | put KEY JSON [SECONDS]")
    }
}

/// `hivemind experts ls PREFIX`.
func runExperts(_ arguments: [String]) async throws {
    let (options, rest) = try parse("hivemind experts", arguments, [OptionSpec("gateway", default: "http://127.0.0.1:8080", help: "gateway URL")])
    guard rest.count == 2, rest[0] == "ls" else { throw OptionError("usage: hivemind experts [--gateway URL] ls PREFIX") }
    let response = try await HTTPClient.shared.get("\(options.string("gateway")!)/v1/experts?prefix=\(rest[1])", timeout: 10)
    for expert in try response.json()["experts"]?.arrayValue ?? [] {
        print("\(expert["uid"]?.stringValue ?? "?")\t\(expert["url"]?.stringValue ?? "?")")
    }
}

/// Options (`--name value`) and the remaining positional words.
func parse(_ command: String, _ arguments: [String], _ specs: [OptionSpec]) throws -> (ServiceOptions, [String]) {
    var flags: [String] = []
    var positional: [String] = []
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument.hasPrefix("--") {
            flags.append(argument)
            let isSwitch = specs.first { "--\($0.name)" == argument }?.isSwitch ?? false
            if !argument.contains("="), !isSwitch, index + 1 < arguments.count {
                flags.append(arguments[index + 1])
                index += 1
            }
        } else {
            positional.append(argument)
        }
        index += 1
    }
    return (try ServiceOptions(service: command, specs: specs, arguments: flags, environment: processEnvironment()), positional)
}
