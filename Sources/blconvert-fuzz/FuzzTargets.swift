// Coverage-guided fuzz targets for the readers of untrusted files, one binary for all of them.
//
// Built for fuzzing by scripts/fuzz.sh (`swift build -Xswiftc -sanitize=fuzzer,address
// -Xswiftc -DBLCONVERT_FUZZING`): libFuzzer's main drives `LLVMFuzzerTestOneInput`, the target
// chosen by $BLCONVERT_FUZZ_TARGET. In an ordinary build the same targets run once over the files
// given (`blconvert-fuzz TARGET FILE...`), which is how crashes found become regression tests.
//
// Every target feeds the bytes to a reader as a file of that kind would reach it and touches what
// the reader returns; an error thrown (`BLError`) is the expected outcome for bad input. A crash,
// a sanitizer report, a hang (-timeout) or memory beyond -rss_limit_mb is a finding.
import BLCore
import BLGraph
import BLMedia
import BLPickle
import BLSafetensors
import BLTorch
import BLVNet

enum FuzzTarget: String, CaseIterable {
    case pickle, zip, legacy, safetensors, json, npy, image, package

    /// Runs the target on one input; returns normally whatever the input.
    func run(_ bytes: UnsafeRawBufferPointer) {
        do {
            switch self {
            case .pickle:
                let v = try PickleFile.read(bytes, name: "fuzz.pkl")
                _ = SharedValuePrinter().json(v, path: "").serialized()
            case .zip, .legacy:
                let owner = ByteStorage(copying: Array(bytes))
                let (_, root) = try TorchFile.read(owner.bytes, owner: owner)
                let flat = root.flattened()
                let printer = SharedValuePrinter()
                for e in flat.others { _ = printer.json(e.value, path: e.path).serialized() }
                // What extract and import do with the tensors: bounded, then materialised.
                try ExpansionBudget.checkMaterialisable(flat.tensors, fileSize: bytes.count)
                for (_, t) in flat.tensors { _ = t.contiguousBytes().count }
            case .safetensors:
                let st = try SafetensorsFile.load(file: MappedFile(copying: bytes, path: "fuzz.safetensors"))
                for (_, t) in st.tensors { _ = t.withContiguousBytes { $0.reduce(0, &+) } }
            case .json:
                let j = try JSONParser.parse(bytes)
                _ = try JSONParser.parse(j.serialized())
            case .npy:
                let t = try NPYReader.parse(MappedFile(copying: bytes, path: "fuzz.npy"))
                _ = t.floats().count
            case .image:
                let img = try ImageDecoder.decode(bytes: bytes)
                _ = Preprocessing(frames: 1).scaleAndCrop(img)
            case .package:
                // graph.json, a zero byte, metadata.json: what ModelPackage.read parses and checks.
                let split = bytes.firstIndex(of: 0) ?? bytes.count
                let graph = try Graph(json: JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[..<split])))
                let meta = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[min(split + 1, bytes.count)...]))
                _ = try ModelPackage.description(metadata: meta, graph: graph)
                _ = try graph.cost(height: 224, width: 224)
            }
        } catch {
            _ = "\(error)"
        }
    }
}

/// A line on standard error.
func printError(_ s: String) {
    let line = s + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

#if BLCONVERT_FUZZING
nonisolated(unsafe) private var selected: FuzzTarget = .pickle

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let name = getenv("BLCONVERT_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        printError("set BLCONVERT_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))")
        exit(2)
    }
    selected = t
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// libFuzzer's driver, for a program that has its own `main` (SwiftPM names an executable's
/// entry point `<target>_main` and aliases `main` to it).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> Int32

@_cdecl("blconvert_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    _ = fuzzInitialize(&argc, &argv)
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) }
}
#else
@main
struct Replay {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
            printError("usage: blconvert-fuzz TARGET FILE...  (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")))")
            exit(2)
        }
        for path in args.dropFirst() {
            do {
                let file = try MappedFile(path: path)
                withExtendedLifetime(file) { target.run(file.bytes) }
                print("ok \(path)")
            } catch {
                printError("\(error)")
                exit(2)
            }
        }
    }
}
#endif
