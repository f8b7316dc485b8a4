package store

// Fill exposes fill to the tests.
var Fill = fill
