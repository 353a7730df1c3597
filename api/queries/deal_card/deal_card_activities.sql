-- The deal's latest 100 activities, newest first, with the manager's name.
-- column *: = activities
-- column manager_name: manager name
select a.activity_type, a.direction, a.at, a.done, a.result, a.manager_id, m.name as manager_name
from activities a
left join managers m on m.manager_id = a.manager_id
where a.deal_id = :deal
order by a.at desc
limit 100
