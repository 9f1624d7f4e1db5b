import Testing
@testable import QueryEngine

@Suite("Signature cache keys")
struct SignatureKeyTests {
    @Test func addressChunksSortInPlaceWhateverTheirOrder() {
        let a: [UInt8] = [10, 0, 0, 2], b: [UInt8] = [10, 0, 0, 1], c: [UInt8] = [9, 255, 0, 0]
        var first = [0xAA] + a + b + c
        var second = [0xAA] + c + a + b
        Responder.sortChunks(&first, from: 1, count: 3, size: 4)
        Responder.sortChunks(&second, from: 1, count: 3, size: 4)
        #expect(first == [0xAA] + c + b + a && second == first)
        var one = [UInt8](repeating: 7, count: 16)
        Responder.sortChunks(&one, from: 0, count: 1, size: 16)
        #expect(one == [UInt8](repeating: 7, count: 16))
    }
}
