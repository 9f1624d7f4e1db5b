import Frontend
import HummingbirdCore
import Metrics
import NIOCore
import NIOHTTPTypes

/// Holds an admin connection's slot in the API's `SourceSlots` and closes the connection at
/// once when its source has none left (issue 18, finding 3): one address (an IPv6 /64) may
/// hold 8 connections, and once half the API's connections are open one /24 (/48) may hold 8
/// more, so an unauthenticated flood from one host or network leaves slots for `/healthz`,
/// `/metrics` and operators elsewhere. No lock: the table is atomic counters.
final class ConnectionShare: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let slots: SourceSlots
    let refused: [SourceSlots.Refusal: Counter]
    private var held: SourceSlots.Held?

    init(slots: SourceSlots, refused: [SourceSlots.Refusal: Counter]) {
        self.slots = slots
        self.refused = refused
    }

    /// The table an admin server's connections share.
    static func table(maxConnections: Int) -> SourceSlots {
        SourceSlots(perPrefix: 8, cap: maxConnections, narrow: (32, 64), wide: (24, 48), buckets: 1024)
    }

    static let counters: [SourceSlots.Refusal: Counter] = [
        .cap: Counter(label: "meridian_admin_refused_total", dimensions: [("reason", "cap")]),
        .perPrefix: Counter(label: "meridian_admin_refused_total", dimensions: [("reason", "per-client")]),
        .perNetwork: Counter(label: "meridian_admin_refused_total", dimensions: [("reason", "per-network")]),
    ]

    func handlerAdded(context: ChannelHandlerContext) {
        switch slots.admit(context.channel.remoteAddress) {
        case .success(let h):
            held = h
        case .failure(let why):
            refused[why]?.increment()
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let h = held { slots.release(h) }
        held = nil
    }
}
