// Warnings for settings that contradict each other (printed on stderr; the command goes on).

extension Run {
    /// `--scale` below the 224 crop: torchvision pads the scaled frame with black to the crop.
    static func scaleBelowCrop(_ scale: Int) -> String {
        "--scale \(scale) is below the 224 x 224 crop: the scaled frames are padded with black to the crop (as torchvision's CenterCrop pads); the reference evaluates at 224 or 256"
    }
}
