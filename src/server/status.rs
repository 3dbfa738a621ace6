//! (to be written: the loop's record of what every client is doing)
