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

    /// Float32 bytes at an odd address (a legacy checkpoint's storage can start anywhere in the
    /// mapped file) read correctly without being bound to Float.
    @Test func unalignedFloatsAreCopiedNotBound() throws {
        let values: [Float] = [1.5, -2, 3.25, 1e-3, 7]
        let base = ByteStorage(copying: [0] + values.flatMap { withUnsafeBytes(of: $0) { Array($0) } })
        let slice = UnsafeRawBufferPointer(rebasing: base.bytes[1...])
        #expect(Int(bitPattern: slice.baseAddress) % 4 != 0)
        let t = try Tensor(dtype: .float32, shape: [5], storage: ByteStorage(slice: slice, owner: base))
        #expect(t.isContiguous && t.floats() == values)
        #expect(try t.converted(to: .float64).doubles() == values.map(Double.init))
    }

    @Test func jsonRoundTrip() throws {
        let text = #"{"a":[1,2.5,"x\u00e9",null,true],"b":{"c":-3}}"#
        let j = try JSONParser.parse(text)
        #expect(j["b"]?["c"]?.intValue == -3)
        #expect(try JSONParser.parse(j.serialized()) == j)
        #expect(throws: BLError.self) { try JSONParser.parse("{\"a\":") }
    }
}
