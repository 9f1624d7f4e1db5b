// swift-tools-version:6.1
// Meridian: an authoritative GSLB DNS server.
//
// Dependency direction (nothing imports upward or sideways; each arrow points at what is imported):
//   Diagnostics (a leaf: file:line diagnostics and the one bounded operator-file reader) under every file reader
//   Diagnostics <- BoundedYAML <- PoolConfig, Gossip (the one bounded way YAML is composed)
//   DNSWire <- ZoneStore, DNSSEC                    (wire format, zone files, online signing)
//   GeoTopology <- PoolConfig <- Selection          (addresses and GeoIP, pool files, per-query selection)
//   Health <- Selection, Gossip                     (health as pure values: ledger, the one health fold, verdicts)
//   Health, Gossip, PoolConfig <- Control           (the control core, pure: MonitorBook, GroupCore, ControlCore)
//   Control <- HealthCheck, GossipTransport         (the shells' I/O: probe executors; gossip sockets)
//   Selection, ZoneStore, DNSSEC <- QueryEngine     (the answer: a pure function of query, client and snapshot)
//   QueryEngine <- Frontend                         (listeners, the UDP planes, TCP guards, the snapshot box)
//   QueryEngine, Gossip <- ConfigurationFiles       (the configuration directory: one entry point, ConfigDirectory.load)
//   ConfigurationFiles, Frontend, HealthCheck, GossipTransport, Control <- MeridianServer <- AdminAPI <- meridian
//   Frontend <- AdminAPI                            (the admin API shares the TCP guards' lock-free SourceSlots)
// MeridianServer's Supervisor runs the ControlCore on one loop and is the only writer of the
// snapshot the answer path reads.
// System libraries are wrapped at the edge: CLDNS by ZoneStore, CMaxMindDB by GeoTopology,
// CCurl by HealthCheck (the checks, and the one-shot requests of the CLI's admin client).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Meridian",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "meridian", targets: ["meridian"]),
        .executable(name: "meridian-agent", targets: ["meridian-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CLDNS", pkgConfig: "ldns", providers: [.apt(["libldns-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Process-level calls Swift cannot make: dropping root in every thread, the one libdispatch
        // parks included (`serve --user`); returning freed heap memory after a reload.
        .target(name: "CPrivileges"),
        // recvmmsg/sendmmsg batches for the UDP data plane.
        .target(name: "CBatchIO"),
        // TCP connect checks with epoll on one thread.
        .target(name: "CTCPProbe"),
        // A zone file through stdio for libldns, keeping only a window of it in memory.
        .target(name: "CZoneStream"),

        // `file:line: message`, the one type every file reader reports problems with. A leaf.
        .target(name: "Diagnostics", exclude: ["README.md"], swiftSettings: strict),
        // The DNS wire format: names, headers, questions, EDNS, a response builder. No I/O.
        .target(name: "DNSWire", exclude: ["README.md"], swiftSettings: strict),
        // Zone files (via libldns) turned into an in-memory name table with wire-format RRsets.
        .target(name: "ZoneStore", dependencies: ["Diagnostics", "DNSWire", "CLDNS", "CZoneStream"], exclude: ["README.md"], swiftSettings: strict),
        // DNSSEC: keys (BIND key files, swift-crypto ECDSA P-256 and Ed25519), RRSIGs over
        // canonical RRsets, NSEC type bit maps, compact denial. Pure values, no I/O but key files.
        .target(
            name: "DNSSEC", dependencies: ["DNSWire", "Diagnostics", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["README.md"], swiftSettings: strict),
        // Client location: IP addresses, prefix tries (topology), MaxMind DB (GeoIP).
        .target(name: "GeoTopology", dependencies: ["CMaxMindDB"], exclude: ["README.md"], swiftSettings: strict),
        // The one way operator YAML is composed: nesting depth scanned before Yams' recursive
        // composer sees the text, and a node budget with aliases expanded.
        .target(name: "BoundedYAML", dependencies: ["Diagnostics", "Yams"], exclude: ["README.md"], swiftSettings: strict),
        // Pool files (YAML): pools, sites, members, regions, order rules, validated with file:line.
        .target(name: "PoolConfig", dependencies: ["Diagnostics", "DNSWire", "GeoTopology", "BoundedYAML", "Yams"], exclude: ["README.md"], swiftSettings: strict),
        // Health of members: observations per observer, the ledger that merges them, the verdict
        // fold, admin overrides; immutable snapshots for selection. Pure values, no I/O.
        .target(name: "Health", dependencies: ["Diagnostics"], exclude: ["README.md"], swiftSettings: strict),
        // Pool selection: a pure function of (query type, client, pool config, health) writing the answer.
        .target(name: "Selection", dependencies: ["DNSWire", "GeoTopology", "PoolConfig", "Health"], exclude: ["README.md"], swiftSettings: strict),
        // The control core as pure values: the monitor book (rise/fall, the inconclusive rules,
        // agent max_age), the group core (SWIM, ledger, probe planning) and the ControlCore that
        // holds both and folds health in one place. Events in, directives out; no I/O.
        .target(name: "Control", dependencies: ["Health", "Gossip", "PoolConfig", "GeoTopology"], exclude: ["README.md"], swiftSettings: strict),
        // The probe executors: TCP (epoll), HTTP(S) via libcurl multi, DNS, exec and feedback agents;
        // they run what the control core asks and hand results back.
        .target(
            name: "HealthCheck",
            dependencies: [
                "CCurl", "CTCPProbe", "Control", "Health", "PoolConfig", "GeoTopology", "DNSWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict),
        // The answer logic: query bytes + snapshot -> response bytes. Pure, no sockets.
        .target(
            name: "QueryEngine", dependencies: ["Diagnostics", "DNSWire", "DNSSEC", "ZoneStore", "GeoTopology", "PoolConfig", "Health", "Selection"],
            exclude: ["README.md"], swiftSettings: strict),
        // Gossip as pure values: the cluster file, SWIM membership, the wire format of messages
        // and ledger entries, the signed envelope and its replay guard.
        .target(
            name: "Gossip",
            dependencies: ["Diagnostics", "Health", "BoundedYAML", "Yams", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["README.md"], swiftSettings: strict),
        // The gossip sockets (SwiftNIO): UDP datagrams and TCP exchanges, sealed and opened.
        .target(
            name: "GossipTransport",
            dependencies: [
                "Gossip", "Control", "Health",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        // The configuration directory: one entry point (ConfigDirectory.load) for serve, reload,
        // check and explain: zones, pools, the state file, keys and the cluster file.
        .target(
            name: "ConfigurationFiles", dependencies: ["Diagnostics", "QueryEngine", "Gossip", "PoolConfig", "Health", "DNSSEC"],
            exclude: ["README.md"], swiftSettings: strict),
        // The front end: DNS listeners' handlers (SwiftNIO) and the batch UDP plane, TCP guards,
        // query metrics, and the snapshot box the answer path reads.
        // dnstap: the encoder, Frame Streams, the per-thread rings and the writer thread.
        .target(
            name: "QueryLog",
            dependencies: [
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "Frontend",
            dependencies: [
                "QueryEngine", "DNSWire", "GeoTopology", "CBatchIO", "CPrivileges", "Selection", "PoolConfig", "QueryLog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        // The server: the supervisor (the only writer of the snapshot, running the control core),
        // reloads, the state file, status, lifecycle; it composes the front end and the shells.
        .target(
            name: "MeridianServer",
            dependencies: [
                "Diagnostics", "QueryEngine", "ZoneStore", "DNSWire", "GeoTopology", "HealthCheck", "Health", "PoolConfig", "Gossip",
                "GossipTransport", "Control", "Frontend", "CBatchIO", "CPrivileges", "Selection", "DNSSEC", "ConfigurationFiles", "QueryLog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The admin HTTP API (Hummingbird): status, explain, overrides, reload, Prometheus
        // metrics and the status page, over the running server.
        .target(
            name: "AdminAPI",
            dependencies: [
                "MeridianServer", "Frontend", "QueryEngine", "Health", "Diagnostics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict),
        // The command line: serve, check.
        .executableTarget(
            name: "meridian",
            dependencies: [
                "MeridianServer", "ZoneStore", "QueryEngine", "Selection", "GeoTopology", "Health", "DNSWire", "Diagnostics", "Gossip",
                "GossipTransport", "Control", "Frontend", "HealthCheck", "PoolConfig", "AdminAPI", "CPrivileges", "DNSSEC", "ConfigurationFiles", "BoundedYAML", "QueryLog",
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            plugins: ["BuildInfo"]
        ),
        // The version and the git commit, for `meridian --version` and meridian_build_info.
        .plugin(name: "BuildInfo", capability: .buildTool()),

        // The feedback agent for Linux nodes (Tools/FeedbackAgent).
        .executableTarget(
            name: "meridian-agent",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/FeedbackAgent",
            swiftSettings: strict
        ),

        // The libFuzzer harness (Tools/fuzz.sh builds it with -sanitize=fuzzer,address and
        // -D FUZZING); an ordinary build replays corpus files through the same decoders.
        .executableTarget(
            name: "meridian-fuzz",
            dependencies: ["DNSWire", "DNSSEC", "ZoneStore", "PoolConfig", "Health", "GeoTopology", "Gossip", "QueryEngine"],
            path: "Tools/Fuzz",
            exclude: ["corpus"],
            swiftSettings: strict
        ),

        // The answer function alone, for instruction counts under callgrind (Tools/bench-callgrind.py).
        .executableTarget(
            name: "meridian-answer-bench",
            dependencies: ["QueryEngine", "DNSWire", "GeoTopology", "Health", "QueryLog", .product(name: "Logging", package: "swift-log")],
            path: "Tools/AnswerBench",
            swiftSettings: strict
        ),

        // Loopback targets for the check-engine benchmark (Tools/bench-checks.py).
        .executableTarget(
            name: "meridian-bench-target",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Tools/BenchTarget",
            swiftSettings: strict
        ),

        .testTarget(name: "DiagnosticsTests", dependencies: ["Diagnostics"]),
        .testTarget(name: "BoundedYAMLTests", dependencies: ["BoundedYAML", "Diagnostics", "Yams"]),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire"]),
        .testTarget(name: "QueryLogTests", dependencies: ["QueryLog"]),
        .testTarget(name: "DNSSECTests", dependencies: ["DNSSEC", "DNSWire", "CLDNS"]),
        .testTarget(name: "ZoneStoreTests", dependencies: ["ZoneStore", "DNSWire", "Diagnostics"]),
        .testTarget(name: "QueryEngineTests", dependencies: ["QueryEngine", "ZoneStore", "DNSWire", "CLDNS", "GeoTopology", "Health"]),
        .testTarget(name: "GeoTopologyTests", dependencies: ["GeoTopology"]),
        .testTarget(name: "PoolConfigTests", dependencies: ["PoolConfig", "ZoneStore", "DNSWire", "Diagnostics"]),
        .testTarget(name: "GossipTests", dependencies: ["Gossip", "Health", "Diagnostics"]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "Gossip", "Health", "PoolConfig", "GeoTopology", "Diagnostics"]),
        .testTarget(name: "HealthTests", dependencies: ["Health"]),
        .testTarget(
            name: "GossipTransportTests",
            dependencies: [
                "GossipTransport", "Gossip",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "HealthCheckTests",
            dependencies: [
                "HealthCheck", "Control", "Health", "PoolConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "AdminAPITests",
            dependencies: ["AdminAPI", "MeridianServer", .product(name: "Hummingbird", package: "hummingbird")]),
        .testTarget(name: "SelectionTests", dependencies: ["Selection", "PoolConfig", "Health", "GeoTopology", "DNSWire"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CLDNS", "CMaxMindDB", "CCurl"]),
        .testTarget(
            name: "MeridianServerTests",
            dependencies: [
                "MeridianServer", "Frontend", "QueryEngine", "ZoneStore", "DNSWire", "GeoTopology", "Selection", "Health",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
    ]
)
