"""Extensions bundled with Symphony, one folder each (manifest + entry module)."""
