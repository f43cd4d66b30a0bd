package vat

// Version is the package's version, recorded in the files Save and
// Checkpoint write.
const Version = "0.8.0"
