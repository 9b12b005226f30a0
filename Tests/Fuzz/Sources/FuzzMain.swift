#if canImport(Glibc)
import Glibc
#endif

// libFuzzer's entry points. libFuzzer supplies `main` (`--sanitize=fuzzer`): it calls
// `LLVMFuzzerInitialize` once with the command line, then `LLVMFuzzerTestOneInput` with every
// input it makes. One executable holds every target; the first argument names the one to run:
//
//     hivemind-fuzz safetensors [libFuzzer flags] [corpus folders]
//
// A child libFuzzer starts (e.g. to minimize a crash) finds the target in FUZZ_TARGET.
// `FUZZ_WRITE_SEEDS=folder hivemind-fuzz TARGET` writes the target's seed inputs there and exits.

/// The target chosen on the command line. Written once in `LLVMFuzzerInitialize`, before any input
/// is run, and only read afterwards: libFuzzer runs inputs on one thread.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>,
                    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> Int32 {
    var name = getenv("FUZZ_TARGET").map { String(cString: $0) }
    if argc.pointee > 1, let first = argv.pointee[1], first.pointee != CChar(UInt8(ascii: "-")) {
        let argument = String(cString: first)
        if FuzzTarget.all.contains(where: { $0.name == argument }) {
            name = argument
            // libFuzzer reads the remaining arguments: drop the target's name from them.
            for index in 1..<Int(argc.pointee) { argv.pointee[index] = argv.pointee[index + 1] }
            argc.pointee -= 1
        }
    }
    guard let name, let target = FuzzTarget.all.first(where: { $0.name == name }) else {
        let names = FuzzTarget.all.map { "  \($0.name): \($0.about)" }.joined(separator: "\n")
        printError("usage: hivemind-fuzz TARGET [libFuzzer flags] [corpus folders]\ntargets:\n\(names)")
        _exit(2)
    }
    setenv("FUZZ_TARGET", name, 1)
    if let folder = getenv("FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) {
        // `_exit`: the leak checker would count this function's live strings as leaks at `exit`.
        _exit(target.writeSeeds(to: folder) ? 0 : 1)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected!.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
