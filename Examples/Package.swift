// swift-tools-version:6.0
import PackageDescription

// A program that uses blconvert as a library, through its public API only: imports the bundled
// mini checkpoint, predicts a clip, and verifies the model against the reference clips.
let package = Package(
    name: "blconvert-examples",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "blconvert", path: ".."),
    ],
    targets: [
        .executableTarget(name: "PredictAndVerify", dependencies: [
            .product(name: "BLConvert", package: "blconvert"),
        ]),
    ]
)
