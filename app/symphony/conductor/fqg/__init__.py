"""The Function Quest Game: recovery puzzles, the simulator, training and evaluation."""
