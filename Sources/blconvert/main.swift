import BLCommands
BLConvert.main()
