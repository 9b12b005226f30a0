import Testing

/// The suites that run several averagers, on loopback servers in this process
/// or as processes. They run one at a time: together they would crowd the two
/// cores and the cooperative thread pool that every test's timers share.
@Suite(.serialized) enum Averagers {}
