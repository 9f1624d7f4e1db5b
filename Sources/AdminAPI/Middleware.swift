import Foundation
import Hummingbird
import Logging
import NIOCore

/// Every error becomes a JSON body `{"error": "..."}` with its HTTP status: a known
/// `HTTPError` keeps its status and message, anything else is a 500 whose detail is logged,
/// never a stack trace or an empty body.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            var response = Self.reply(error.status, error.body ?? error.status.reasonPhrase)
            for field in error.headers { response.headers.append(field) }
            return response
        } catch let error as any HTTPResponseError {
            return Self.reply(error.status, "\(error.status.reasonPhrase)")
        } catch {
            logger.error("admin API \(request.method) \(request.uri.path): \(error)")
            return Self.reply(.internalServerError, "internal error: \(error)")
        }
    }

    static func reply(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let data = (try? JSONEncoder().encode(["error": message])) ?? Data("{\"error\":\"error\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Bearer tokens (or HTTP Basic with the token as the password, so a browser can open the
/// status page) for everything but `/metrics` and `/healthz`. Compared in constant time.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [String]
    static var open: Set<String> { ["/metrics", "/healthz"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !tokens.isEmpty, !Self.open.contains(request.uri.path) else { return try await next(request, context) }
        guard let presented = Self.token(request.headers[.authorization]) else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"meridian\", charset=\"UTF-8\""], message: "a bearer token is required (Authorization: Bearer TOKEN)")
        }
        guard tokens.contains(where: { Self.constantTimeEqual($0, presented) }) else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"meridian\", charset=\"UTF-8\""], message: "wrong token")
        }
        return try await next(request, context)
    }

    /// The token of `Bearer TOKEN` or `Basic base64(user:TOKEN)`.
    static func token(_ header: String?) -> String? {
        guard let header else { return nil }
        if header.lowercased().hasPrefix("bearer ") { return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
        if header.lowercased().hasPrefix("basic "),
           let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
           let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") {
            return String(text[text.index(after: colon)...])
        }
        return nil
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}
