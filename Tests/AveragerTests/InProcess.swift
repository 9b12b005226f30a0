import Testing

/// The suites that run several averagers on loopback servers. They run one at
/// a time: each is light, but together they would crowd the two cores and the
/// cooperative thread pool that every test's timers share.
@Suite(.serialized) enum InProcess {}
