"""Running a team's tracking server and its users."""
