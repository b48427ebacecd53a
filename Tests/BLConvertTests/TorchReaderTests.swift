import Testing
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch

@Suite struct TorchReaderTests {
    @Test func smoke() throws {
        for f in ["tensors_legacy.pth", "tensors_zip.pth", "train_legacy.pth.tar", "train_zip.pth.tar"] {
            let t = try TorchFile.load(path: TestData.fixture("parsers/" + f))
            let flat = t.root.flattened()
            print(f, t.format, flat.tensors.count, flat.others.map { "\($0.path)=\($0.value)" })
            for (p, x) in flat.tensors.prefix(40) { print("  ", p, x.dtype, x.shape, x.strides, x.offset, x.doubles().prefix(6)) }
        }
        for f in ["evil_eval.pkl", "evil_os_system_legacy.pth", "evil_exec_zip.pth"] {
            do { _ = try TorchFile.load(path: TestData.fixture("parsers/" + f)); print("LOADED?!") } catch { print(error) }
            do { _ = try PickleFile.load(path: TestData.fixture("parsers/" + f)); print("LOADED?!") } catch { print(error) }
        }
    }
}
