import Testing

/// The parent of every DHT suite. Its tests run one at a time: a 64-node
/// simulation or a brute-force routing check beside the other suites would
/// take both cores of a small machine from suites that time things.
@Suite(.serialized) struct DHTTests {}
