import Testing
import Foundation
@testable import BLCore
@testable import BLPickle

@Suite struct PickleTests {
    @Test func bigIntDecode() {
        let b: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        let r = b.withUnsafeBytes { PickleInteger.decode($0) }
        print(r)
    }
}
