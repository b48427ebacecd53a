// swift-tools-version:6.0
import PackageDescription

// Module map (one job each):
//   C*            system libraries (libhdf5, zlib, OpenBLAS, libjpeg/libpng) through shim headers
//   CSHA256       SHA-256 blocks with the x86 SHA extensions (the portable path is in BLCore)
//   CGemm         AVX-512 SGEMM for the convolutions (runtime dispatch; BLAS otherwise)
//   BLCore        dtypes, byte readers, memory-mapped files, strided tensors, the value tree, errors
//   BLPickle      the pickle reader: records opcodes into values, never executes anything
//   BLTorch       PyTorch checkpoints: zip (torch >= 1.6) and legacy (torch < 1.6) containers
//   BLHDF5        HDF5 files through libhdf5
//   BLSafetensors safetensors reader and writer
//   BLCheckpoint  format detection and one view over every reader (inspect / extract)
//   BLGraph       the graph IR: ops, shapes, validation, text/JSON, FLOP and memory counts
//   BLVNet        bLVNet-TAM: configuration inference, mapping onto the IR, passes, model packages
//   BLKernels     numeric kernels (the only code that calls BLAS), each with a naive oracle
//   BLEngine      executes the IR with the kernels
//   BLMedia       frame folders: PNG/JPEG decoding and the reference preprocessing
//   BLVerify      parity against reference clips
//   BLEval        whole-list evaluation as the reference test.py (the model behind a closure)
//   BLCommands    the command-line interface (one file per subcommand)
//   blbench       benchmark suite: hot kernels and whole clips (release builds)
let package = Package(
    name: "blconvert",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "blconvert", targets: ["blconvert"]),
        .executable(name: "blbench", targets: ["blbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CImageIO", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev", "libjpeg62-turbo-dev"])]),

        .target(name: "CSHA256"),
        .target(name: "CGemm"),
        .target(name: "BLCore", dependencies: ["CSHA256"]),
        .target(name: "BLPickle", dependencies: ["BLCore"]),
        .target(name: "BLTorch", dependencies: ["BLCore", "BLPickle", "CZlib"]),
        .target(name: "BLHDF5", dependencies: ["BLCore", "CHDF5"]),
        .target(name: "BLSafetensors", dependencies: ["BLCore"]),
        .target(name: "BLCheckpoint",
                dependencies: ["BLCore", "BLPickle", "BLTorch", "BLHDF5", "BLSafetensors"]),
        .target(name: "BLGraph", dependencies: ["BLCore"]),
        .target(name: "BLVNet",
                dependencies: ["BLCore", "BLGraph", "BLCheckpoint", "BLSafetensors"]),
        .target(name: "BLKernels", dependencies: ["BLCore", "COpenBLAS", "CGemm"]),
        .target(name: "BLEngine", dependencies: ["BLCore", "BLGraph", "BLKernels", "BLVNet"]),
        .target(name: "BLMedia", dependencies: ["BLCore", "CImageIO"]),
        .target(name: "BLVerify",
                dependencies: ["BLCore", "BLEngine", "BLVNet", "BLSafetensors", "BLCheckpoint"]),
        .target(name: "BLEval", dependencies: ["BLCore", "BLMedia"]),
        .target(name: "BLCommands",
                dependencies: [
                    "BLCore", "BLCheckpoint", "BLSafetensors", "BLGraph", "BLVNet",
                    "BLEngine", "BLVerify", "BLMedia", "BLEval",
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ]),
        .executableTarget(name: "blconvert", dependencies: ["BLCommands", "BLHDF5"]),
        .executableTarget(name: "blbench",
                          dependencies: ["BLCore", "BLKernels", "BLEngine", "BLVNet", "BLCheckpoint", "COpenBLAS"]),

        .testTarget(name: "BLConvertTests",
                    dependencies: [
                        "BLCore", "BLPickle", "BLTorch", "BLHDF5", "BLSafetensors", "BLCheckpoint",
                        "BLGraph", "BLVNet", "BLKernels", "BLEngine", "BLVerify", "BLMedia",
                        "BLEval", "BLCommands",
                    ],
                    resources: []),
    ]
)
