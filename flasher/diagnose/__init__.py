"""Why a board does not answer: listening and probing (I/O), naming the cause (pure), recording."""
