import Testing

/// The parent of every neural suite. Its tests run one at a time: together
/// they would take both cores of a small machine from suites that time
/// things (the HTTP tests' timeouts), and one at a time they still take only
/// a few seconds.
@Suite(.serialized) struct NeuralTests {}
