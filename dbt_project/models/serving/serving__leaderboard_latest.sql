-- The latest run of leaderboard per source (macros/serving.sql).
{{ latest_run(ref('serving__leaderboard'), partition_by=['source']) }}
