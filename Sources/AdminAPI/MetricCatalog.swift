import Metrics
import Prometheus

/// Every metric Meridian exports, with its help text: the one table the `# HELP` lines of
/// `/metrics` come from (`MetricCatalogTests` checks that every metric named in the sources is
/// here).
public enum MetricCatalog {
    public static let help: [String: String] = [
        "meridian_build_info": "Always 1: the version and git commit of this binary, as labels.",
        "meridian_queries_total": "DNS queries answered, by transport, response code and query type.",
        "meridian_queries_dropped_total": "Packets not answered: too short, a response, or an unreadable header.",
        "meridian_responses_truncated_total": "Responses sent with TC=1 (too large for UDP, or a cookieless large answer).",
        "meridian_pool_answers_total": "Answers from pools, by pool, site, route (site, nodes, all-down-*) and whether the pool fell back.",
        "meridian_rrl_responses_total": "UDP responses rate limited, by action: dropped, or slipped (sent truncated).",
        "meridian_dnssec_signatures_total": "RRSIGs put into answers, by source: made, or taken from the signature cache.",
        "meridian_tcp_connections": "DNS TCP connections open now.",
        "meridian_tcp_refused_total": "DNS TCP connections refused, by reason: cap, per-client (/24, /56) or per-network (/16, /48).",
        "meridian_admin_refused_total": "Admin API connections closed at once, by reason: cap, per-client (address, /64) or per-network (/24, /48).",
        "meridian_members": "Pool members by pool and health state.",
        "meridian_member_transitions_total": "Member health transitions, by pool and new state.",
        "meridian_member_weight_factor": "A member's weight factor from its feedback agent and overrides (0 to 1).",
        "meridian_member_effective_weight": "A member's weight after agent feedback and overrides.",
        "meridian_health_checks_total": "Health checks run by this instance, by type and result.",
        "meridian_health_check_duration_seconds": "How long health checks took, by type.",
        "meridian_health_transitions_total": "Health transitions this instance observed, by new state.",
        "meridian_health_local_shortages_total": "Checks inconclusive because this instance ran short of a resource (descriptors, buffers, ports).",
        "meridian_health_exec_waits_total": "Exec checks that waited for a free slot.",
        "meridian_health_generation": "Health views published (the health generation).",
        "meridian_config_generation": "Configurations loaded: the start and each accepted reload.",
        "meridian_reloads_total": "Reloads, by result.",
        "meridian_latency_samples_total": "Latency samples this instance took in, by source: tcp (TCP_INFO of DNS-over-TCP connections), probe (its own probes of queried resolvers) or api (POST /measurements).",
        "meridian_latency_probes_total": "Latency probes of queried resolvers, by how they ended: dns (a reply to a query on port 53), tcp (no reply; a connect to port 53 was accepted or reset) or none (neither, no sample).",
        "meridian_latency_networks": "Client networks (/24, /48) this instance holds its own latency measurements for (bounded by query volume).",
        "meridian_latency_entries": "Latency entries in the group's ledger (observers x networks x sites), what order: latency reads.",
        "meridian_config_last_reload_success_timestamp_seconds": "When the configuration in force was loaded (the start or the last good reload), in seconds since the Unix epoch.",
        "meridian_config_last_reload_successful": "1 if the last reload was accepted (or none was tried since the start), 0 if it failed and the previous configuration serves.",
        "meridian_dnssec_signature_expiry_timestamp_seconds": "Per signed zone: when its answers stop validating unless something changes, in seconds since the Unix epoch: for a pre-signed zone the earliest RRSIG expiration in its file; for a zone signed online the time its signing keys' timing leaves it with no active key (+Inf when no end is set).",
        "meridian_gossip_messages_total": "Gossip messages, by direction.",
        "meridian_gossip_bytes_total": "Gossip octets, by direction.",
        "meridian_gossip_dropped_total": "Gossip messages and connections refused, by reason.",
        "meridian_gossip_push_pulls_total": "Push-pull state exchanges this instance started, by result.",
        "meridian_gossip_live_members": "Peers this instance holds alive, itself included.",
        "meridian_gossip_peers": "Peers this instance knows (itself not included), by SWIM state: alive, suspect, dead, left.",
        "meridian_gossip_peers_different_configuration": "Live peers whose pool configuration (members and checks) differs from this instance's: their answers can differ.",
        "meridian_site_usable": "1 if a pool's site can answer now (enough healthy members, min_up), else 0.",
        "meridian_gossip_socket_errors_total": "Gossip socket errors, by kind (send EPERM, receive ..., closed, bind).",
        "meridian_gossip_socket_rebinds_total": "Times the gossip UDP socket was bound again after SwiftNIO closed it.",
        "meridian_dnstap_frames_total": "dnstap messages written to the file or socket.",
        "meridian_dnstap_dropped_total": "dnstap messages dropped, by reason: queue full (an answering thread's queue), no reader (the socket is not connected or a write failed).",
        "meridian_dnstap_connected": "1 while the dnstap file is open or the socket connected to its reader, else 0.",
        "process_cpu_seconds_total": "User and system CPU time this process has used, in seconds.",
        "process_resident_memory_bytes": "Resident memory of this process, in bytes.",
        "process_open_fds": "File descriptors this process holds open.",
        "process_max_fds": "The process's file descriptor limit (RLIMIT_NOFILE, after raising it to the hard limit).",
        "process_start_time_seconds": "When the process started, in seconds since the Unix epoch.",
    ]
}

/// swift-metrics' factory over the Prometheus registry, as `PrometheusMetricsFactory` but with
/// each metric's help text from `MetricCatalog`, so every metric has `# HELP` and `# TYPE`.
public struct DescribedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let plain: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        plain = PrometheusMetricsFactory(registry: registry)
    }

    func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricCatalog.help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: plain.defaultValueHistogramBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: plain.defaultDurationHistogramBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
