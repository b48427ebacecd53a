// swift-tools-version:6.0
import PackageDescription

// Module map (one job each; every target lists exactly what it imports):
//   C*                system libraries (libhdf5, zlib, OpenBLAS, libjpeg/libpng) through shim headers
//   CSHA256           SHA-256 blocks with the x86 SHA extensions (the portable path is in BLCore)
//   CGemm             AVX-512 SGEMM for the convolutions (run-time dispatch; BLAS otherwise; x86-64 only)
//   CSpawn            posix_spawn of the HDF5 reading process, with no inherited descriptors
//   CCleanup          removal of in-flight temporary outputs on SIGINT/SIGTERM/SIGHUP (async-signal-safe)
//   BLCore            dtypes, byte readers, memory-mapped files, strided tensors, the value tree, errors
//   BLPickle          the pickle reader: records opcodes into values, never executes anything
//   BLTorch           PyTorch checkpoints: zip (torch >= 1.6) and legacy (torch < 1.6) containers
//   BLHDF5            HDF5 files, read in a separate process (the asking side: no libhdf5 here)
//   BLHDF5Library     the reading side: libhdf5 itself, run only by blconvert-hdf5-reader
//   BLSafetensors     safetensors reader and writer
//   BLCheckpoint      format detection and one view over every reader (inspect / extract)
//   BLGraph           the graph IR: ops, shapes, validation, text/JSON, FLOP and memory counts
//   BLVNet            bLVNet-TAM: configuration inference, mapping onto the IR, passes, model packages
//   BLKernels         numeric kernels (the only code that calls BLAS), each with a naive oracle
//   BLEngine          executes the IR with the kernels
//   BLMedia           frame folders: PNG/JPEG decoding and the reference preprocessing
//   CFFmpeg           libavformat/libavcodec/libswscale/libavutil (FFmpeg 5.1) through a shim header
//   CFFmpegLoader     loads those libraries on the first video (dlopen), trampolines to their functions
//   BLVideo           video files: demux, decode and scale as the reference ffmpeg extraction does
//   BLVerify          parity of an engine against reference clips
//   BLEval            whole-list evaluation as the reference test.py (the model behind a closure)
//   BLConvert         the library: the public API (load, predict, import, verify) that everything uses
//   BLCommands        the command-line interface (one file per subcommand), on BLConvert
//   blconvert-fuzz    libFuzzer targets for every reader of untrusted bytes (scripts/fuzz.sh)
//   blbench           benchmark suite: hot kernels and whole clips (release builds)
//   BLTestSupport     what the tests share: fixture lookup, a seeded generator, a naive executor
let package = Package(
    name: "blconvert",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "BLConvert", targets: ["BLConvert"]),
        .executable(name: "blconvert", targets: ["blconvert"]),
        .executable(name: "blconvert-hdf5-reader", targets: ["blconvert-hdf5-reader"]),
        .executable(name: "blbench", targets: ["blbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
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
        // FFmpeg's headers (libavformat-dev, libavcodec-dev, libswscale-dev, libavutil-dev; `make
        // deps`) on the default include path; the libraries are loaded at run time by CFFmpegLoader,
        // not linked (a pkgConfig here would link them).
        .systemLibrary(name: "CFFmpeg"),
        .target(name: "CFFmpegLoader", linkerSettings: [.linkedLibrary("dl")]),

        .target(name: "CSHA256"),
        .target(name: "CGemm"),
        .target(name: "CSpawn"),
        .target(name: "CCleanup"),
        .target(name: "BLCore", dependencies: ["CSHA256", "CCleanup"]),
        .target(name: "BLPickle", dependencies: ["BLCore"]),
        .target(name: "BLTorch", dependencies: ["BLCore", "BLPickle", "CZlib"]),
        .target(name: "BLHDF5", dependencies: ["BLCore", "CSpawn"]),
        .target(name: "BLHDF5Library", dependencies: ["BLCore", "BLHDF5", "CHDF5"]),
        .target(name: "BLSafetensors", dependencies: ["BLCore"]),
        .target(name: "BLCheckpoint",
                dependencies: ["BLCore", "BLPickle", "BLTorch", "BLHDF5", "BLSafetensors"]),
        .target(name: "BLGraph", dependencies: ["BLCore"]),
        .target(name: "BLVNet", dependencies: ["BLCore", "BLGraph", "BLSafetensors"]),
        // OpenBLAS on Linux; Accelerate's BLAS on Darwin.
        .target(name: "BLKernels",
                dependencies: ["BLCore", "CGemm", .target(name: "COpenBLAS", condition: .when(platforms: [.linux]))],
                linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS]))]),
        .target(name: "BLEngine", dependencies: ["BLCore", "BLGraph", "BLKernels"]),
        .target(name: "BLMedia", dependencies: ["BLCore", "CImageIO"]),
        .target(name: "BLVideo", dependencies: ["BLCore", "BLMedia", "CFFmpeg", "CFFmpegLoader"]),
        .target(name: "BLVerify", dependencies: ["BLCore", "BLGraph", "BLEngine", "BLSafetensors"]),
        .target(name: "BLEval", dependencies: ["BLCore", "BLMedia"]),
        .target(name: "BLConvert",
                dependencies: ["BLCore", "BLCheckpoint", "BLGraph", "BLVNet", "BLKernels", "BLEngine",
                               "BLMedia", "BLVideo", "BLVerify", "BLEval", "BLSafetensors"]),
        .target(name: "BLCommands",
                dependencies: [
                    "BLConvert", "BLCore", "BLCheckpoint", "BLSafetensors", "BLGraph", "BLVNet",
                    "BLEngine", "BLKernels", "BLVerify", "BLMedia", "BLVideo", "BLEval",
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ]),
        .executableTarget(name: "blconvert", dependencies: ["BLCommands"]),
        .executableTarget(name: "blconvert-hdf5-reader", dependencies: ["BLHDF5Library"]),
        // Fuzz targets (scripts/fuzz.sh builds them with libFuzzer; otherwise a replay tool).
        .executableTarget(name: "blconvert-fuzz",
                          dependencies: ["BLCore", "BLPickle", "BLTorch", "BLSafetensors", "BLMedia", "BLGraph", "BLVNet"]),
        .executableTarget(name: "blbench",
                          dependencies: ["BLConvert", "BLCore", "BLKernels", "BLEngine", "BLVideo"]),

        .target(name: "BLTestSupport", dependencies: ["BLCore", "BLGraph", "BLKernels"],
                path: "Tests/BLTestSupport"),
        .testTarget(name: "BLConvertTests",
                    dependencies: [
                        "BLTestSupport", "BLConvert",
                        "BLCore", "BLPickle", "BLTorch", "BLHDF5", "BLHDF5Library", "BLSafetensors", "BLCheckpoint",
                        "BLGraph", "BLVNet", "BLKernels", "BLEngine", "BLVerify", "BLMedia",
                        "BLVideo", "CFFmpeg", "BLEval", "BLCommands",
                    ]),
    ]
)
