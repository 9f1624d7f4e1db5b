import HummingbirdCore
import NIOHTTPTypes
import NIOCore

/// Closes an admin connection that has not delivered a whole request (head and body) within
/// `limit` of its start or of the end of the previous one. Hummingbird's idle timeout is reset
/// by every read, so a client that trickles a header byte now and then would keep its slot;
/// this deadline is for the whole request (issue 18, finding 3: 64 idle connections took every
/// admin slot, with no token needed, and locked `/healthz`, `/metrics` and operators out).
/// Sits after HTTP decoding, where it sees request parts.
final class RequestDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let limit: TimeAmount
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The request is whole at its end: the next one gets a deadline of its own, counted
        // from now (between requests the idle timeout applies as well).
        if case .end = unwrapInboundIn(data) { arm(context) }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}
