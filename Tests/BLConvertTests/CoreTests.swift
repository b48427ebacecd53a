import Testing
import BLTestSupport
@testable import BLCore

@Suite struct CoreTests {
    @Test func halfRoundTrip() {
        for bits in [UInt16(0x3c00), 0xc000, 0x7bff, 0x0001, 0x8400, 0x7c00] {
            #expect(HalfConversion.floatToHalf(HalfConversion.halfToFloat(bits)) == bits)
        }
        #expect(HalfConversion.halfToFloat(0x3c00) == 1.0)
        #expect(HalfConversion.floatToBFloat16(1.0) == 0x3f80)
    }

    @Test func stridedViewReadsLogicalOrder() throws {
        let storage = ByteStorage(copying: (0..<6).flatMap { withUnsafeBytes(of: Float($0)) { Array($0) } })
        let t = try Tensor(dtype: .float32, shape: [3, 2], strides: [1, 3], storage: storage)
        #expect(t.floats() == [0, 3, 1, 4, 2, 5])
        #expect(!t.isContiguous)
        #expect(throws: BLError.self) { try Tensor(dtype: .float32, shape: [3, 3], storage: storage) }
    }

    @Test func jsonRoundTrip() throws {
        let text = #"{"a":[1,2.5,"x\u00e9",null,true],"b":{"c":-3}}"#
        let j = try JSONParser.parse(text)
        #expect(j["b"]?["c"]?.intValue == -3)
        #expect(try JSONParser.parse(j.serialized()) == j)
        #expect(throws: BLError.self) { try JSONParser.parse("{\"a\":") }
    }
}
