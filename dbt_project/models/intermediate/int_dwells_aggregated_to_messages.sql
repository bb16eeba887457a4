{#- One row per message with a landing-page visit: the longest dwell and when the first visit began. -#}
with

{{ changed_messages_ctes() }}

dwells as (
    select * from {{ ref('stg_messaging__dwells') }}
    where message_id is not null
    {% if is_incremental() %}
        and message_id in (select message_id from affected_messages)
    {% endif %}
),

final as (
    select
        message_id,
        max(dwell_seconds) as max_dwell_seconds,
        sum(dwell_seconds) as total_dwell_seconds,
        min(case when dwell_seconds >= {{ var('engaged_dwell_seconds') }} then visited_at end) as engaged_at,
        count(*) as visits,
        (select ingested_through from ingested_through) as ingested_through
    from dwells
    group by message_id
)

select * from final
