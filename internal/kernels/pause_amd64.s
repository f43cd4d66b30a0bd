#include "textflag.h"

// func spinPause()
// One PAUSE: tells the core that this is a polling loop, so that on an SMT
// core it leaves the execution units to the sibling thread, and that the
// loop's exit needs no memory-order flush.
TEXT ·spinPause(SB), NOSPLIT, $0-0
	PAUSE
	RET
