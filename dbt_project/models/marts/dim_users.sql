{#- One row per user: current profile and consent, opt-out state, contact history, and a learned
    best send hour. The best hour is the local hour with the most human clicks after shrinking the
    user's own click counts toward the segment's hour profile (weight best_hour_prior_clicks), so
    that a user with two clicks is not pinned to an hour by chance. As-of time: the newest send. -#}
with users as (
    select * from {{ ref('stg_messaging__users') }}
),

messages as (
    select * from {{ ref('fct_messages') }}
),

replies as (
    select * from {{ ref('stg_messaging__replies') }}
),

as_of as (
    select max(sent_at) as as_of_at from messages
),

contact as (
    select
        user_id,
        max(case when channel = 'sms' then sent_at end) as last_sms_at,
        max(case when channel = 'email' then sent_at end) as last_email_at,
        max(case when channel = 'push' then sent_at end) as last_push_at,
        sum(case when sent_at > {{ dbt.dateadd('day', -7, '(select as_of_at from as_of)') }} then 1 else 0 end) as messages_7d,
        sum(case when sent_at > {{ dbt.dateadd('day', -30, '(select as_of_at from as_of)') }} then 1 else 0 end) as messages_30d,
        count(*) as messages_total,
        sum(case when is_clicked then 1 else 0 end) as messages_clicked,
        max(first_human_click_at) as last_human_click_at
    from messages
    group by user_id
),

last_keyword as (
    -- the latest opt-out or opt-in word decides (STOP then START means opted in again)
    select user_id, keyword, replied_at
    from replies
    where keyword in (select keyword from {{ ref('reply_keywords') }} where meaning in ('opt_out', 'opt_in'))
      and user_id is not null
    qualify row_number() over (partition by user_id order by replied_at desc, reply_id desc) = 1
),

clicks_by_hour as (
    select
        messages.user_id,
        users.segment,
        {{ hour_of_day(to_local_time('messages.first_human_click_at', 'users.timezone')) }} as local_hour,
        count(*) as clicks
    from messages
    inner join users on messages.user_id = users.user_id
    where messages.first_human_click_at is not null
    group by 1, 2, 3
),

segment_profile as (
    select
        segment,
        local_hour,
        cast(sum(clicks) as {{ dbt.type_float() }}) / sum(sum(clicks)) over (partition by segment) as share
    from clicks_by_hour
    group by segment, local_hour
),

user_totals as (
    select user_id, sum(clicks) as clicks from clicks_by_hour group by user_id
),

segment_best as (
    select segment, local_hour, share
    from segment_profile
    qualify row_number() over (partition by segment order by share desc, local_hour) = 1
),

candidates as (
    -- the posterior (own clicks at h + k × segment share at h) / (own total + k) has a constant
    -- denominator per user, so its best hour is either one the user clicked at or the segment's best
    select own.user_id, own.local_hour
    from clicks_by_hour as own
    union
    select users.user_id, segment_best.local_hour
    from users
    inner join segment_best on users.segment = segment_best.segment
),

scored as (
    select
        candidates.user_id,
        candidates.local_hour,
        (coalesce(own.clicks, 0) + {{ var('best_hour_prior_clicks') }} * coalesce(segment_profile.share, 0))
            / (coalesce(user_totals.clicks, 0) + {{ var('best_hour_prior_clicks') }}) as score
    from candidates
    inner join users on candidates.user_id = users.user_id
    left join segment_profile
        on users.segment = segment_profile.segment and candidates.local_hour = segment_profile.local_hour
    left join clicks_by_hour as own
        on own.user_id = candidates.user_id and own.local_hour = candidates.local_hour
    left join user_totals on user_totals.user_id = candidates.user_id
),

best_hour as (
    select user_id, local_hour as best_send_hour, score as best_send_hour_score
    from scored
    qualify row_number() over (partition by user_id order by score desc, local_hour) = 1
),

final as (
    select
        users.user_id,
        users.segment,
        users.region,
        users.country,
        users.carrier,
        users.timezone,
        users.consent_sms,
        users.consent_email,
        users.consent_push,
        users.active_hours,
        (coalesce(not users.consent_sms, false)
            or coalesce(last_keyword.keyword in (select keyword from {{ ref('reply_keywords') }} where meaning = 'opt_out'), false)
        ) as is_opted_out,
        contact.last_sms_at,
        contact.last_email_at,
        contact.last_push_at,
        coalesce(contact.messages_7d, 0) as messages_7d,
        coalesce(contact.messages_30d, 0) as messages_30d,
        coalesce(contact.messages_total, 0) as messages_total,
        coalesce(user_totals.clicks, 0) as human_clicks,
        contact.last_human_click_at,
        best_hour.best_send_hour,
        best_hour.best_send_hour_score,
        users.profile_updated_at
    from users
    left join contact on users.user_id = contact.user_id
    left join last_keyword on users.user_id = last_keyword.user_id
    left join user_totals on users.user_id = user_totals.user_id
    left join best_hour on users.user_id = best_hour.user_id
)

select * from final
