"""Protocol artifacts on disk: the `.protocols/NNNN-slug/` folder inside a worktree, written safely."""
